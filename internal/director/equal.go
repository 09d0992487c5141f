package director

import (
	"reflect"

	"github.com/govs/govs/internal/config"
)

// sameVRRP reports whether two configurations declare the same VRRP
// instances, scripts, sync groups and globals, ignoring where in the file
// they were written: moving a block must not restart VRRP on reload.
func sameVRRP(a, b *config.Config) bool {
	if a == nil || b == nil {
		return a == b
	}
	return equalIgnoringPos(reflect.ValueOf(a.Global), reflect.ValueOf(b.Global)) &&
		equalIgnoringPos(reflect.ValueOf(a.Scripts), reflect.ValueOf(b.Scripts)) &&
		equalIgnoringPos(reflect.ValueOf(a.SyncGroups), reflect.ValueOf(b.SyncGroups)) &&
		equalIgnoringPos(reflect.ValueOf(a.Instances), reflect.ValueOf(b.Instances))
}

var posType = reflect.TypeOf(config.Pos{})

// equalIgnoringPos is reflect.DeepEqual for configuration values (no
// cycles, no funcs), treating every config.Pos as equal.
func equalIgnoringPos(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == posType {
		return true
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalIgnoringPos(a.Elem(), b.Elem())
	case reflect.Slice, reflect.Array:
		if a.Kind() == reflect.Slice && a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !equalIgnoringPos(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !equalIgnoringPos(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if !equalIgnoringPos(a.MapIndex(k), b.MapIndex(k)) {
				return false
			}
		}
		return true
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return a.IsNil() && b.IsNil()
	}
	// Unexported fields cannot be read with Interface(); compare through
	// the typed accessors instead.
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.String:
		return a.String() == b.String()
	}
	return false
}
