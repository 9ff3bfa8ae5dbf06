package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// The -wsaudio mode: each call is a voice bot on a WebSocket audio endpoint (PROTOCOL.md §30)
// bridged to a phone on a plain PCMU leg in one session. The phone sends a 20 ms PCMU packet
// every 20 ms, the bot a 20 ms PCM message every 20 ms; both count what comes back. The
// server's CPU over the window, divided by the calls, is the cost of one WebSocket audio
// endpoint with its PCMU leg.

// wsAudioConfig is what -wsaudio needs.
type wsAudioConfig struct {
	URL                    string
	Calls                  int
	Rate                   int
	Duration, Ramp, Settle time.Duration
	Progress               io.Writer
	ServerCPU              *cpuProbe
}

// wsAudioResult is the -wsaudio summary.
type wsAudioResult struct {
	Calls      int            `json:"calls"`
	SetUp      int            `json:"calls_set_up"`
	Rate       int            `json:"ws_sample_rate"`
	WindowSecs float64        `json:"window_secs"`
	Errors     map[string]int `json:"errors,omitempty"`
	// Phone → bot: RTP packets the phones sent, 20 ms messages' worth of PCM the bots got.
	PhoneSent     int64   `json:"phone_packets_sent"`
	BotReceivedMs float64 `json:"bot_received_ms"`
	// Bot → phone: 20 ms messages the bots sent, RTP packets the phones got.
	BotSent       int64 `json:"bot_frames_sent"`
	PhoneReceived int64 `json:"phone_packets_received"`
	// Server CPU over the window, and per call (one WebSocket audio endpoint and its PCMU leg)
	// as a percentage of one core.
	ServerCPUSecs     float64 `json:"server_cpu_secs,omitempty"`
	CPUPerCallPercent float64 `json:"server_cpu_percent_of_a_core_per_call,omitempty"`
	ToolCPUSecs       float64 `json:"tool_cpu_secs"`
	LoadAvg           string  `json:"loadavg,omitempty"`
}

// wsCall is one bot-and-phone call.
type wsCall struct {
	ctl   *control
	phone *net.UDPConn
	dst   netip.AddrPort
	bot   *websocket.Conn
	wmu   sync.Mutex
}

// runWSAudio sets up the calls, measures a window, and tears everything down.
func runWSAudio(ctx context.Context, cfg wsAudioConfig) (*wsAudioResult, error) {
	res := &wsAudioResult{Calls: cfg.Calls, Rate: cfg.Rate, Errors: map[string]int{}}
	var emu sync.Mutex
	countErr := func(key string) {
		emu.Lock()
		res.Errors[key]++
		emu.Unlock()
	}
	tone := make([]int16, 8000)
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	pcmu, err := encodePCM(tone, 8000, codec.PCMU)
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 2*cfg.Rate/50)
	for i := 0; i < cfg.Rate/50; i++ {
		binary.LittleEndian.PutUint16(frame[2*i:], uint16(int16(8000*math.Sin(2*math.Pi*440*float64(i)/float64(cfg.Rate)))))
	}

	var measuring atomic.Bool
	var phoneSent, phoneRecv, botSent, botRecvBytes atomic.Int64
	calls := make([]*wsCall, cfg.Calls)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range calls {
		if ctx.Err() != nil {
			break
		}
		c, key, err := setupWSCall(ctx, cfg)
		if err != nil {
			countErr(errorKey(key, err))
			if c != nil {
				c.close()
			}
			continue
		}
		calls[i] = c
		res.SetUp++
		// The phone's reader, the bot's reader, and one sender for both, 20 ms apart.
		wg.Add(3)
		go func() {
			defer wg.Done()
			var buf [1500]byte
			for {
				if _, err := c.phone.Read(buf[:]); err != nil {
					return
				}
				if measuring.Load() {
					phoneRecv.Add(1)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for {
				_, b, err := c.bot.ReadMessage()
				if err != nil {
					return
				}
				if measuring.Load() {
					botRecvBytes.Add(int64(len(b)))
				}
			}
		}()
		go func(i int) {
			defer wg.Done()
			hdr := [12]byte{0x80, 0}
			binary.BigEndian.PutUint32(hdr[8:], uint32(0x10000+i))
			pkt := make([]byte, 12+160)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-tick.C:
				case <-stop:
					return
				}
				binary.BigEndian.PutUint16(hdr[2:], uint16(k))
				binary.BigEndian.PutUint32(hdr[4:], uint32(k*160))
				copy(pkt, hdr[:])
				copy(pkt[12:], pcmu[k%len(pcmu)])
				if _, err := c.phone.WriteToUDPAddrPort(pkt, c.dst); err == nil && measuring.Load() {
					phoneSent.Add(1)
				}
				c.wmu.Lock()
				_ = c.bot.SetWriteDeadline(time.Now().Add(time.Second))
				err := c.bot.WriteMessage(websocket.BinaryMessage, frame)
				c.wmu.Unlock()
				if err == nil && measuring.Load() {
					botSent.Add(1)
				}
			}
		}(i)
		if cfg.Ramp > 0 && cfg.Calls > 1 {
			time.Sleep(cfg.Ramp / time.Duration(cfg.Calls))
		}
		if cfg.Progress != nil && (i+1)%50 == 0 {
			fmt.Fprintf(cfg.Progress, "rtpbridge-load: %d calls set up\n", i+1)
		}
	}
	defer func() {
		close(stop)
		for _, c := range calls {
			if c != nil {
				c.close()
			}
		}
		wg.Wait()
	}()
	if res.SetUp == 0 {
		return res, errNoCalls
	}
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
	}

	var cpu0 time.Duration
	if cfg.ServerCPU != nil {
		cpu0, _ = cfg.ServerCPU.read()
	}
	self0, _ := selfCPU()
	start := time.Now()
	measuring.Store(true)
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	measuring.Store(false)
	window := time.Since(start)
	self1, _ := selfCPU()
	res.WindowSecs = window.Seconds()
	res.ToolCPUSecs = (self1 - self0).Seconds()
	if cfg.ServerCPU != nil {
		if cpu1, err := cfg.ServerCPU.read(); err == nil {
			res.ServerCPUSecs = (cpu1 - cpu0).Seconds()
			res.CPUPerCallPercent = 100 * res.ServerCPUSecs / window.Seconds() / float64(res.SetUp)
		}
	}
	time.Sleep(200 * time.Millisecond) // packets in flight
	res.PhoneSent, res.PhoneReceived, res.BotSent = phoneSent.Load(), phoneRecv.Load(), botSent.Load()
	res.BotReceivedMs = float64(botRecvBytes.Load()) / 2 / float64(cfg.Rate) * 1000
	res.LoadAvg = loadAvg()
	return res, nil
}

// setupWSCall creates one call; on error it returns the step's name.
func setupWSCall(ctx context.Context, cfg wsAudioConfig) (*wsCall, string, error) {
	c := &wsCall{}
	var err error
	if c.ctl, err = dialControl(ctx, cfg.URL, dialTimeout, nil); err != nil {
		return c, "connect", err
	}
	if err := c.ctl.call(ctx, requestTimeout, "session.create", nil, nil); err != nil {
		return c, "session.create", err
	}
	if c.phone, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		return c, "phone socket", err
	}
	var leg struct {
		SDPAnswer string `json:"sdp_answer"`
	}
	offer := offerSDP(c.phone.LocalAddr().(*net.UDPAddr).Port, codec.PCMU)
	if err := c.ctl.call(ctx, requestTimeout, "endpoint.create_from_offer", map[string]any{"sdp": offer}, &leg); err != nil {
		return c, "endpoint.create_from_offer", err
	}
	if c.dst, _, err = parseAnswer(leg.SDPAnswer); err != nil {
		return c, "answer", err
	}
	var ws struct {
		ConnectToken string `json:"connect_token"`
	}
	if err := c.ctl.call(ctx, requestTimeout, "endpoint.create_websocket", map[string]any{"sample_rate": cfg.Rate}, &ws); err != nil {
		return c, "endpoint.create_websocket", err
	}
	audioURL := strings.TrimSuffix(cfg.URL, "/") + "/audio/" + ws.ConnectToken
	d := websocket.Dialer{HandshakeTimeout: dialTimeout}
	bot, resp, err := d.DialContext(ctx, audioURL, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return c, "audio socket", err
	}
	c.bot = bot
	return c, "", nil
}

func (c *wsCall) close() {
	if c.bot != nil {
		c.wmu.Lock()
		_ = c.bot.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = c.bot.Close()
	}
	if c.ctl != nil {
		_ = c.ctl.call(context.Background(), destroyTimeout, "session.destroy", nil, nil)
		c.ctl.close()
	}
	if c.phone != nil {
		c.phone.Close()
	}
}

// writeWSAudio prints the -wsaudio summary.
func writeWSAudio(w io.Writer, r *wsAudioResult) {
	fmt.Fprintf(w, "WebSocket audio calls: %d of %d set up (bot at %d Hz, phone PCMU), window %.1f s\n", r.SetUp, r.Calls, r.Rate, r.WindowSecs)
	lossPct := func(sent int64, got float64) float64 {
		if sent == 0 {
			return 0
		}
		return 100 * (1 - got/float64(sent))
	}
	fmt.Fprintf(w, "  phone → bot: %d packets sent, %.0f ms of audio received (%.2f %% short)\n",
		r.PhoneSent, r.BotReceivedMs, lossPct(r.PhoneSent, r.BotReceivedMs/20))
	fmt.Fprintf(w, "  bot → phone: %d frames sent, %d packets received (%.2f %% short)\n",
		r.BotSent, r.PhoneReceived, lossPct(r.BotSent, float64(r.PhoneReceived)))
	if r.ServerCPUSecs > 0 {
		fmt.Fprintf(w, "  server CPU: %.2f s over the window = %.3f %% of one core per call (WebSocket endpoint + PCMU leg)\n",
			r.ServerCPUSecs, r.CPUPerCallPercent)
	}
	fmt.Fprintf(w, "  tool CPU: %.2f s; load average %s\n", r.ToolCPUSecs, r.LoadAvg)
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(w, "  error ×%d: %s\n", r.Errors[k], k)
	}
}
