package hub

import (
	"context"
	"os"
	"sync"
	"time"
)

// Two pulls of one file, in one process or in several, must not write the
// same partial download. Each takes the file's lock first: a channel per
// path within the process, and an advisory lock on PATH.lock across
// processes (flock, LockFileEx; on systems without one, only the
// in-process lock). The system drops a process's locks when it dies, so a
// killed pull leaves nothing stale behind.

// procLocks holds a channel per locked path, closed on unlock.
var procLocks struct {
	sync.Mutex
	m map[string]chan struct{}
}

// lockPoll is how often a waiting pull tries another process's lock again.
var lockPoll = 100 * time.Millisecond

// lock takes the lock of path, waiting while someone else holds it (and
// calling waiting once, then) until ctx is done.
func lock(ctx context.Context, path string, waiting func()) (unlock func(), err error) {
	told := false
	wait := func() {
		if !told {
			told = true
			waiting()
		}
	}
	for {
		unlock, ok, err := tryLock(path)
		if err != nil || ok {
			return unlock, err
		}
		wait()
		procLocks.Lock()
		held := procLocks.m[path]
		procLocks.Unlock()
		poll := time.NewTimer(lockPoll)
		if held != nil {
			poll.Stop() // held in this process: wake when it is released
		}
		select {
		case <-held:
		case <-poll.C:
		case <-ctx.Done():
			poll.Stop()
			return nil, ctx.Err()
		}
	}
}

// tryLock takes the lock of path if it is free.
func tryLock(path string) (unlock func(), ok bool, err error) {
	procLocks.Lock()
	if procLocks.m[path] != nil {
		procLocks.Unlock()
		return nil, false, nil
	}
	if procLocks.m == nil {
		procLocks.m = map[string]chan struct{}{}
	}
	held := make(chan struct{})
	procLocks.m[path] = held
	procLocks.Unlock()
	release := func() {
		procLocks.Lock()
		delete(procLocks.m, path)
		procLocks.Unlock()
		close(held)
	}

	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			release()
			return nil, false, err
		}
		if ok, err := lockFile(f); err != nil || !ok {
			f.Close()
			release()
			return nil, false, err
		}
		// The holder before us may have removed the file before releasing
		// it: a lock on a removed file locks nothing, so take the new one.
		fi, err1 := f.Stat()
		cur, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, cur) {
			return func() {
				os.Remove(path) // before unlocking, so no one locks a removed file for good
				unlockFile(f)
				f.Close()
				release()
			}, true, nil
		}
		unlockFile(f)
		f.Close()
	}
}
