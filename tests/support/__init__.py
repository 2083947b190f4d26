"""Support code for tests: real servers, raw protocol client, differential harness."""
