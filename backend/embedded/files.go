package embedded

import (
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Modes of what the backend creates: the data directory holds every
// payload, so only its owner may read it.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// privateFS is the disk as pebble sees it, but with the files it creates
// made 0600 and its directories 0700. pebble creates files 0666 (less the
// umask) and has no option for it; each file is chmod'ed right after it is
// created, inside a data directory that is already 0700, so no other user
// can open it in between.
type privateFS struct{ vfs.FS }

func (fs privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return f, private(name, f, err)
}

func (fs privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return f, private(name, f, err)
}

func (fs privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return f, private(newname, f, err)
}

func (fs privateFS) Lock(name string) (io.Closer, error) {
	f, err := fs.FS.Lock(name)
	return f, private(name, f, err)
}

func (fs privateFS) MkdirAll(dir string, _ os.FileMode) error {
	return fs.FS.MkdirAll(dir, dirMode)
}

func (fs privateFS) Unwrap() vfs.FS { return fs.FS }

// private makes the file name, which f has open, 0600, unless opening it
// failed with err; it closes f when it cannot.
func private(name string, f io.Closer, err error) error {
	if err != nil {
		return err
	}
	if err := os.Chmod(name, fileMode); err != nil {
		f.Close()
		return err
	}
	return nil
}
