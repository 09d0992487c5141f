// Package archtest holds repository-wide architecture tests: every package
// has a doc comment, and the pure packages stay free of kernel and OS glue.
package archtest
