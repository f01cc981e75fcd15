"""The local backend: every role a spawned process on this machine; ports made of
authenticated Unix sockets, raw-byte pipes, a seqlock in shared memory, one events pipe per
role incarnation, and multiprocessing queues (commands) and events (flags)."""
