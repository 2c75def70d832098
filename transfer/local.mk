# transfer/: metainfo, merkle, wire codec, crypto transport, picker, swarm; depends on common/ only.
