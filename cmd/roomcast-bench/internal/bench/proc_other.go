//go:build !linux

package bench

import (
	"errors"
	"syscall"
	"time"
)

var errNoProc = errors.New("process statistics need Linux /proc")

func childAttr() *syscall.SysProcAttr        { return nil }
func serverAttr() *syscall.SysProcAttr       { return nil }
func memory(int) (rss, hwm int64, err error) { return 0, 0, errNoProc }
func cpuTime(int) (time.Duration, error)     { return 0, errNoProc }
func machineBusy() (time.Duration, error)    { return 0, errNoProc }
