//go:build !linux

package chunker

// stamp reports no stamp: without a ctime every served chunk is hashed.
func (c *content) stamp(j int) (fileStamp, bool) { return fileStamp{}, false }

// statStamp reports no stamp.
func statStamp(path string) (fileStamp, bool) { return fileStamp{}, false }
