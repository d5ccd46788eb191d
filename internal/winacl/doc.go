// Package winacl gives files and folders on Windows an access list of their
// own. Unix mode bits mean nothing there: a file takes the access list its
// folder passes on, and %ProgramData% lets every local user read, and
// create files in, what is below it. Elsewhere the package is empty.
package winacl
