"""
The states of a client connection, and the kinds of entries in its pending queue
(shared by the connection's input, output and local-operation parts).
"""

# Connection states.
AWAIT_CONNECT = 0
HANDSHAKING = 1
ESTABLISHED = 2
CLOSING = 3
