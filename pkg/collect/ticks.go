package collect

import (
	"math"
	"strconv"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
)

// niceStep is a round step (1, 2 or 5 times a power of ten) that cuts
// [0, span] into at most n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 || n < 1 {
		return 1
	}
	raw := span / float64(n)
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

// NiceTicks are round ticks from 0 to at least max (at most n+1 of them),
// and the axis top they end at.
func NiceTicks(maxV float64, n int) ([]chart.Tick, float64) {
	if maxV <= 0 {
		maxV = 1
	}
	step := niceStep(maxV, n)
	decimals := max(0, int(-math.Floor(math.Log10(step))))
	var ticks []chart.Tick
	for i := 0; ; i++ {
		scale := math.Pow(10, float64(decimals))
		v := math.Round(float64(i)*step*scale) / scale
		ticks = append(ticks, chart.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		if v >= maxV-step*1e-9 {
			return ticks, v
		}
	}
}

// timeSteps are the round steps of a time axis.
var timeSteps = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// TimeTicks are ticks on round times (whole 10 s, minutes, ...) between
// start and end, at most n of them.
func TimeTicks(start, end time.Time, n int) []chart.Tick {
	span := end.Sub(start)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			step = s
			break
		}
	}
	var ticks []chart.Tick
	for t := start.Truncate(step); !t.After(end); t = t.Add(step) {
		if t.Before(start) {
			continue
		}
		ticks = append(ticks, chart.Tick{Value: chart.TimeToFloat64(t), Label: t.Local().Format(time.TimeOnly)})
	}
	return ticks
}
