"""
C{--session-processes N}: one standalone zkreg spread over the machine's cores.

The parent keeps the data role and supervises N session processes that share the
client port (L{zkreg.processes.supervisor}); each child is a session server linked
to the parent over a Unix socket (L{zkreg.processes.child}), listening with
C{SO_REUSEPORT} (L{zkreg.processes.listeners}).  docs/processes.md says what each
process shows and what reads guarantee.
"""
