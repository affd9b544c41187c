package cli

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// chromium finds Debian's chromium (hack/apt-packages.txt). Without it the
// test fails on CI and is skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: CI installs it from hack/apt-packages.txt")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the screenshot test needs a real browser")
	return ""
}

// screenshot opens page in headless chromium and returns what it shows in
// a window of w×h pixels.
func screenshot(t *testing.T, page []byte, w, h int) image.Image {
	t.Helper()
	bin := chromium(t)
	dir := t.TempDir()
	file, shot := filepath.Join(dir, "incident.html"), filepath.Join(dir, "shot.png")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+shot, "--window-size="+strconv.Itoa(w)+","+strconv.Itoa(h),
		"file://"+file)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	// chromium starts helper processes: end them all with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	t.Logf("chromium took %.1fs", time.Since(start).Seconds())
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if d := os.Getenv("LIBERATOR_SCREENSHOT_DIR"); d != "" {
		_ = os.WriteFile(filepath.Join(d, t.Name()+".png"), b, 0o644)
	}
	return img
}

// rgb is a colour of the picture, as "#rrggbb".
type rgb struct{ r, g, b uint8 }

func colourOf(s string) rgb {
	var c rgb
	for i, p := range []*uint8{&c.r, &c.g, &c.b} {
		var v uint8
		for _, ch := range s[1+2*i : 3+2*i] {
			v <<= 4
			switch {
			case ch >= '0' && ch <= '9':
				v |= uint8(ch - '0')
			default:
				v |= uint8(ch-'a') + 10
			}
		}
		*p = v
	}
	return c
}

// is reports whether the pixel at (x, y) is c, within a small tolerance.
func is(img image.Image, x, y int, c rgb) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	near := func(a uint32, b uint8) bool {
		d := int(a>>8) - int(b)
		return d >= -6 && d <= 6
	}
	return near(r, c.r) && near(g, c.g) && near(b, c.b)
}

// span is a horizontal stretch of one colour.
type span struct {
	colour string
	x0, x1 int // x1 excluded
}

// runs lists the stretches of row y in the given colours, left to right.
func runs(img image.Image, y int, colours ...string) []span {
	var out []span
	bounds := img.Bounds()
	for x := bounds.Min.X; x < bounds.Max.X; x++ {
		for _, c := range colours {
			if !is(img, x, y, colourOf(c)) {
				continue
			}
			if n := len(out); n > 0 && out[n-1].colour == c && out[n-1].x1 == x {
				out[n-1].x1 = x + 1
			} else {
				out = append(out, span{c, x, x + 1})
			}
			break
		}
	}
	return out
}

// The picture of a takeover, rendered by a real browser, shows the
// downtime's parts in order and to scale, and each moved pod's downtime
// under them; a pod name carrying a script is shown, not run.
func TestStatusPictureInBrowser(t *testing.T) {
	ns, tks := worker1(t)
	tk := &tks[len(tks)-1]
	evil := *tk.Status.MovedPods[0].DeepCopy()
	evil.Name = `<script>document.body.style.background="#ff0000"</script>`
	tk.Status.MovedPods = append(tk.Status.MovedPods, evil)
	var page bytes.Buffer
	if err := writeNodeHTML(&page, now, ns, []v1alpha1.Takeover{*tk}); err != nil {
		t.Fatal(err)
	}
	img := screenshot(t, page.Bytes(), 1200, 800)
	bounds := img.Bounds()
	if bounds.Dx() != 1200 || bounds.Dy() != 800 {
		t.Fatalf("screenshot is %dx%d, want 1200x800", bounds.Dx(), bounds.Dy())
	}

	// Not blank: a white page with many drawn pixels, in many colours; and
	// not red, which the script in the pod's name would have made it.
	white, red := colourOf("#ffffff"), colourOf("#ff0000")
	drawn, reds := 0, 0
	colours := map[[3]uint32]bool{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			if !is(img, x, y, white) {
				drawn++
			}
			if is(img, x, y, red) {
				reds++
			}
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	total := bounds.Dx() * bounds.Dy()
	t.Logf("%d of %d pixels drawn (%.1f%%), %d colours", drawn, total, 100*float64(drawn)/float64(total), len(colours))
	if !is(img, 2, 2, white) || reds > 0 {
		t.Errorf("the page background is not white (%d red pixels): the script in a pod name ran", reds)
	}
	if drawn < total/25 || len(colours) < 50 {
		t.Errorf("the screenshot is nearly blank: %d of %d pixels drawn, %d colours", drawn, total, len(colours))
	}

	// The downtime lane: the row with the most detection-coloured pixels.
	lane, most := -1, 0
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		n := 0
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			if is(img, x, y, colourOf(colourDetection)) {
				n++
			}
		}
		if n > most {
			lane, most = y, n
		}
	}
	if lane < 0 {
		t.Fatal("no detection bar in the screenshot")
	}
	parts := runs(img, lane, colourDetection, colourFence, colourRelease, colourSchedule, colourStart)
	var order []string
	width := map[string]int{}
	for _, r := range parts {
		if r.x1-r.x0 < 2 {
			continue // the anti-aliased edge of a bar
		}
		order = append(order, r.colour)
		width[r.colour] += r.x1 - r.x0
	}
	t.Logf("downtime lane at y=%d: %v, widths %v", lane, order, width)
	want := []string{colourDetection, colourFence, colourSchedule, colourStart}
	if len(order) != len(want) {
		t.Fatalf("downtime lane shows %v, want detection, fence, schedule, start (the release's 0 s hides under the schedule)", order)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("downtime lane shows %v, want %v", order, want)
		}
	}
	// 40 s of detection, 5 s of fence, 1 s of schedule and 3 s of start
	// on an axis of 49 s, 800 px wide.
	perSecond := float64(picPlotX1-picPlotX0) / 49
	for c, secs := range map[string]float64{colourDetection: 40, colourFence: 5, colourStart: 3} {
		if got, exp := float64(width[c]), secs*perSecond; got < exp-3 || got > exp+3 {
			t.Errorf("bar %s is %.0f px wide, want %.0f (%.0f s)", c, got, exp, secs)
		}
	}
	if r := float64(width[colourDetection]) / float64(width[colourFence]); r < 7.2 || r > 8.8 {
		t.Errorf("detection is %.2f times as wide as the fence, want 8 (40 s / 5 s)", r)
	}
	left, right := parts[0].x0, parts[len(parts)-1].x1

	// Each moved pod: a bar from the last heartbeat (the lane's left end)
	// to its replacement Ready (here the lane's right end).
	rows := 0
	for y := lane + 1; y < bounds.Max.Y; y++ {
		pods := runs(img, y, colourPodDown)
		if len(pods) == 0 || pods[0].x1-pods[0].x0 < 100 {
			continue
		}
		if y > 0 && len(runs(img, y-1, colourPodDown)) > 0 {
			continue // the same bar
		}
		rows++
		// The bar's row, a few pixels down: its label and the scheduled
		// mark split it.
		first, last := pods[0], pods[len(pods)-1]
		if d := first.x0 - left; d < -2 || d > 2 {
			t.Errorf("pod bar %d starts at x=%d, the last heartbeat is at x=%d", rows, first.x0, left)
		}
		if d := last.x1 - right; d < -2 || d > 2 {
			t.Errorf("pod bar %d ends at x=%d, the replacement Ready at x=%d", rows, last.x1, right)
		}
	}
	if rows != 2 {
		t.Errorf("%d pod bars, want 2", rows)
	}
}
