// zstd codec.
