// jemalloc's compiled-in options, linked into the daemon only when it links jemalloc. jemalloc
// reads this symbol at start-up (Debian's libjemalloc2 defines it weak, so this one wins); the
// MALLOC_CONF environment variable still overrides any of it.
//
// background_thread: jemalloc returns freed memory to the system only while some thread
// allocates, so an idle daemon kept a burst's peak resident (136 MiB after one maximal push);
// a background thread purges on the decay schedule by itself.
// dirty_decay_ms:1000: freed pages go back after 1 s instead of jemalloc's 10 s. Under 30 s of
// bench/load/profile.sh's load the peak RSS was 44-55 MiB against 49-72 MiB in eleven
// interleaved pairs, with no cost in CPU per delivery out of the noise (docs/performance.md,
// "The memory held for the index").
extern "C" {
// NOLINTNEXTLINE: the name and type jemalloc looks for.
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000";
}
