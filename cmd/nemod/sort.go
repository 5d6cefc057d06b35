package main

import (
	"maps"
	"slices"
)

func sortedKeys(m map[string]uint64) []string { return slices.Sorted(maps.Keys(m)) }
