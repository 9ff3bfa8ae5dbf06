//go:build unix

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// dirAdvice explains a failure (err) to create or write the directory dir
// in terms an operator can act on: a read-only file system needs a
// writable mount; a permission problem is a uid that does not own the
// directory, so it names rtpbridge's uid/gid, the owner of the directory
// concerned and both ways out. It returns "" for other causes.
func dirAdvice(dir string, err error) string {
	at, fi := nearestExisting(dir)
	switch {
	case errors.Is(err, syscall.EROFS):
		return fmt.Sprintf("%s is on a read-only file system: mount a writable volume or a tmpfs there "+
			"(a container started with --read-only needs --tmpfs /tmp for the default cache_dir /tmp/rtpbridge-cache "+
			"and a volume for recording_dir; compose: tmpfs: [/tmp]; Kubernetes: an emptyDir)", at)
	case errors.Is(err, fs.ErrPermission):
		uid, gid := os.Getuid(), os.Getgid()
		owner := ""
		runAsOwner := ""
		if fi != nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				owner = fmt.Sprintf(" and %s belongs to uid %d gid %d (mode %04o)", at, st.Uid, st.Gid, fi.Mode().Perm())
				if st.Uid != 0 {
					runAsOwner = fmt.Sprintf(", run rtpbridge as its owner (docker run --user %d:%d, compose RTPBRIDGE_USER=%d:%d)",
						st.Uid, st.Gid, st.Uid, st.Gid)
				}
			}
		}
		return fmt.Sprintf("rtpbridge runs as uid %d gid %d%s: make %s writable for uid %d "+
			"(for a bind-mounted host directory: sudo chown %d:%d <host directory>)%s",
			uid, gid, owner, at, uid, uid, gid, runAsOwner)
	}
	return ""
}
