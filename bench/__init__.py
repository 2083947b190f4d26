"""
Benchmarks of zkreg against Apache ZooKeeper: C{python -m bench}, see L{bench.run}.
"""
