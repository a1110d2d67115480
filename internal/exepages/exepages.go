// Package exepages gives back the pages of the crawlctl binary that a
// runtime process mapped while starting and does not use again.
//
// Every Go package linked into crawlctl runs its init functions in every
// crawlctl process, and the kernel maps a 64 KiB window of the executable
// around each page such code touches (fault-around). A `crawlctl run worker`
// so starts with ~30 MiB of the binary resident, nearly all of it code and
// tables of packages the worker never calls (the CLI's Prometheus TSDB,
// Helm, the Docker client). Release unmaps the executable's read-only,
// file-backed pages once start-up is over; the kernel maps back, from the
// page cache, the ones the process goes on to use. Nothing is copied or
// lost: such pages are clean copies of the file.
package exepages

// Stats is what Release did.
type Stats struct {
	Mappings int   // read-only mappings of the executable released
	Bytes    int64 // resident bytes they held before
}
