package audiotest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// WaitUDPBound polls /proc/net/udp until some socket is bound to port on 127.0.0.1 or any
// address, so a test can start sending once an ffmpeg CLI receiver listens. Reading /proc leaves
// the port alone, unlike a trial bind, which could steal it from ffmpeg. Without procfs it falls
// back to a generous pause.
func WaitUDPBound(ctx context.Context, port int) error {
	want := fmt.Sprintf(":%04X ", port)
	for {
		data, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			select {
			case <-time.After(2 * time.Second):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 1 && strings.HasSuffix(f[1]+" ", want) &&
				(strings.HasPrefix(f[1], "0100007F:") || strings.HasPrefix(f[1], "00000000:")) {
				return nil
			}
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
