package chunker

import "golang.org/x/sys/unix"

// stamp returns the current stamp of content file j (false if unknown: the
// file is not kept open or fstat failed).
func (c *content) stamp(j int) (fileStamp, bool) {
	if len(c.paths) > maxCachedFiles {
		return fileStamp{}, false
	}
	f, _, err := c.open(j)
	if err != nil {
		return fileStamp{}, false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileStamp{}, false
	}
	return stampOf(&st), true
}

func stampOf(st *unix.Stat_t) fileStamp {
	return fileStamp{
		dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}
}

// statStamp returns the stamp of the file at path.
func statStamp(path string) (fileStamp, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileStamp{}, false
	}
	return stampOf(&st), true
}
