package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"regexp"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// The exit codes of every command (docs/cli.md, "Exit codes"). A script
// tells a command that could not run (2, 3) from one that ran and did not
// reach its goal (1).
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitGoalNotMet: the command ran and its goal was not met: a drill
	// or an evacuation that timed out or was refused by a check, a config
	// file that was read and refused, a node that does not exist.
	ExitGoalNotMet = 1
	// ExitUsage: bad command line: an unknown command or flag, a wrong
	// number of arguments, a flag value out of range.
	ExitUsage = 2
	// ExitCannotRun: the cluster could not be reached or read: no or a
	// bad kubeconfig, the API server unreachable or unavailable, not
	// authenticated, permission denied.
	ExitCannotRun = 3
)

// exitError is an error with its exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a bad command line (ExitUsage).
func usageErrorf(format string, a ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, a...)}
}

// goalNotMet marks err as a command that ran and did not reach its goal
// (ExitGoalNotMet).
func goalNotMet(err error) error { return &exitError{code: ExitGoalNotMet, err: err} }

// cannotRun marks err as a command that could not reach or read the
// cluster (ExitCannotRun).
func cannotRun(err error) error { return &exitError{code: ExitCannotRun, err: err} }

// ExitCode is the exit code for the error a command returned: the code it
// was marked with, ExitCannotRun for an API server that cannot be reached
// or refuses the credentials, and ExitGoalNotMet for any other failure.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if clusterUnreachable(err) {
		return ExitCannotRun
	}
	return ExitGoalNotMet
}

// clusterUnreachable reports whether err says the API server could not be
// reached, was unavailable, or refused who we are.
func clusterUnreachable(err error) bool {
	switch {
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err):
		return true
	}
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne)
}

// markUsageErrors makes the command line's own errors (unknown command or
// flag, wrong arguments) ExitUsage, on cmd and every command below it.
func markUsageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return &exitError{code: ExitUsage, err: err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd)
}

// rootArgs refuses an unknown command, as cobra does for a root command
// without Args, but as a usage error.
func rootArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &exitError{code: ExitUsage, err: errors.New(msg)}
}

// Main runs the command line args (args[0] is the program's name) and
// returns the exit code. An error is one line on standard error.
//
// Run as kubectl-liberator (a kubectl plugin), help names the commands
// "kubectl liberator ...". Run as kubectl_complete-liberator (what kubectl
// 1.26 and later runs to complete a plugin's command line), it prints the
// completions of the words given, as cobra's __complete does.
func Main(args []string, s IOStreams) int {
	root := NewRoot(s)
	rest := args[1:]
	switch filepath.Base(args[0]) {
	case PluginCompleteName:
		rest = append([]string{cobra.ShellCompRequestCmd}, rest...)
		setDisplayName(root, PluginDisplayName)
	case PluginName:
		setDisplayName(root, PluginDisplayName)
	}
	root.SetArgs(rest)
	err := root.Execute()
	if err != nil {
		printError(s.ErrOut, err)
	}
	return ExitCode(err)
}

func printError(w io.Writer, err error) { fmt.Fprintln(w, "liberator:", err) }

// The names the binary has as a kubectl plugin.
const (
	// PluginName is the plugin's file name: kubectl runs it for
	// "kubectl liberator".
	PluginName = "kubectl-liberator"
	// PluginCompleteName is the file kubectl runs to complete the plugin's
	// command line.
	PluginCompleteName = "kubectl_complete-liberator"
	// PluginDisplayName is how the commands are typed as a plugin.
	PluginDisplayName = "kubectl liberator"
)

var exampleCommand = regexp.MustCompile(`(?m)^(\s*)liberator `)

// setDisplayName makes help name the root command name (usage lines,
// examples) instead of "liberator".
func setDisplayName(root *cobra.Command, name string) {
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	root.Annotations[cobra.CommandDisplayNameAnnotation] = name
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Example = exampleCommand.ReplaceAllString(c.Example, "${1}"+name+" ")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
