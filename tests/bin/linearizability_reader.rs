//! A reader process of `tests/it/linearizable.rs`: reads until told, then
//! prints its history (see [`nscache_tests::linearizable::reader_process`]).

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    nscache_tests::linearizable::reader_process().await;
}
