"""
The ZooKeeper client protocol as bytes: pure encoding and decoding, no I/O.

Modules:

  - L{zkreg.proto.jute}: the jute primitives and the L{Record} base.  A record class
    declares C{fields = (("name", TYPE), ...)} once; encoder and decoder are generated
    from it.  C{rec.serialize() -> bytes}, C{rec.serialize_into(bytearray)},
    C{Cls.deserialize(buf, offset=0) -> (rec, new_offset)},
    C{Cls.from_bytes(buf) -> rec} (must use all of C{buf}).  Malformed input raises
    L{zkreg.proto.jute.DecodeError} and nothing else.
  - L{zkreg.proto.records}: one class per C{zookeeper.jute} class, jute class and
    field names verbatim (C{Stat.ephemeralOwner}); C{ConnectRequest.readOnly} and
    C{ConnectResponse.readOnly} are L{None} when the peer omitted them.
  - L{zkreg.proto.consts}: L{OpCode}, L{Err}, L{EventType}, L{KeeperState},
    L{CreateMode}, L{Perms}, L{WatcherType}, L{AddWatchMode}, L{Xid}, and the
    well-known ids and ACLs.
  - L{zkreg.proto.multi}: the multi/multiRead request and response bodies, which are
    sequences rather than records.
  - L{zkreg.proto.ops}: for each opcode, the request record and the reply record.

Framing (the 4-byte length before each packet) and the order of header and body in a
packet belong to the connection code: a request is C{RequestHeader} then the body of
L{zkreg.proto.ops.OPS}C{[type].request}; a reply is C{ReplyHeader} then, when
C{err == 0}, the body of C{.response}; a notification is C{ReplyHeader(xid=-1,
zxid=-1, err=0)} then L{WatcherEvent}; the handshake is a bare L{ConnectRequest} and
L{ConnectResponse}.
"""
