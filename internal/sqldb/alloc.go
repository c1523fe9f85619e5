package sqldb

import "modernc.org/libc"

// SQLite's C allocations go to the modernc libc allocator, which keeps
// small blocks of one size in 64 KiB mappings and unmaps a mapping as soon
// as its last block is freed. SQLite takes and frees a page-sized buffer
// on nearly every B-tree insert that splits a page (balance), so with no
// other block of that size alive each such insert cost an mmap and a
// munmap: a fifth of a command's journal write under a burst
// (devices.BenchmarkJournal). One block of each size kept for the life of
// the process keeps every size's mapping: at most eleven mappings, 704 KiB
// of address space, most of it never touched.
func init() {
	tls := libc.NewTLS()
	defer tls.Close()
	for size := 16; size <= 16<<10; size <<= 1 {
		libc.Xmalloc(tls, libc.Tsize_t(size))
	}
}
