package schemas

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FormatRanges writes sorted, de-duplicated work numbers as compact ranges:
// [101 102 103 200] becomes "101-103,200". Visibility events use it so that
// a lost session covering 60,000 agents stays a short string.
func FormatRanges(nums []int) string {
	if len(nums) == 0 {
		return ""
	}
	s := slices.Clone(nums)
	slices.Sort(s)
	s = slices.Compact(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return b.String()
}

// ParseRanges reverses FormatRanges. It accepts the ranges in any order and
// rejects reversed or malformed ones.
func ParseRanges(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("schemas: bad range %q: %w", part, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("schemas: bad range %q: %w", part, err)
			}
		}
		if b < a || b-a > MaxWorkNo {
			return nil, fmt.Errorf("schemas: bad range %q", part)
		}
		for n := a; n <= b; n++ {
			out = append(out, n)
		}
	}
	return out, nil
}
