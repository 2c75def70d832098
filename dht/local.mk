# dht/: Mainline DHT (BEP 5), no I/O of its own; depends on common/ only.
