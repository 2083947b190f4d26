"""
zkreg: a registry server speaking the Apache ZooKeeper client protocol, on Twisted.
"""

#: The version of zkreg and curatorish (one distribution); setup.cfg reads it here.
__version__ = "0.1.0.dev0"
