// jemalloc's compiled-in options, linked into the daemon only when it links jemalloc. jemalloc
// reads this symbol at start-up (Debian's libjemalloc2 defines it weak, so this one wins); the
// MALLOC_CONF environment variable still overrides any of it.
//
// background_thread: jemalloc returns freed memory to the system only while some thread
// allocates, so an idle daemon kept a burst's peak resident (136 MiB after one maximal push);
// a background thread purges on the decay schedule by itself. dirty_decay_ms keeps its default
// (10 s): a shorter decay gives memory back sooner but costs madvise calls under load.
extern "C" {
// NOLINTNEXTLINE: the name and type jemalloc looks for.
const char* malloc_conf = "background_thread:true";
}
