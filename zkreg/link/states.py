"""
What the parts of the session server's data link over TCP (L{zkreg.link.tcp} and its
mixins) share: the link's states, as C{srvr}/C{mntr} report them, and the namespace
they all log under.
"""

#: The namespace of the whole link, so that one log filter sees all of its parts (as
#: before they were split into modules).
LOG_NAMESPACE = "zkreg.link.tcp"

#: Link states, as C{srvr}/C{mntr} report them.
CONNECTING = "connecting"
SYNCING = "syncing"
UP = "up"
DOWN = "down"
UNAVAILABLE = "unavailable"
