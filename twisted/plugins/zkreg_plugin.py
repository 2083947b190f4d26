from twisted.application.service import ServiceMaker

zkreg = ServiceMaker("zkreg", "zkreg.tap", "A ZooKeeper-compatible registry server.", "zkreg")
