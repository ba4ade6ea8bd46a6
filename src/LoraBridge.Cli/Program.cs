using LoraBridge.Cli;

StartupTimings.MainEntered();

// Ctrl+C: System.CommandLine cancels the action's token; the Python runtime turns that into a
// KeyboardInterrupt on its thread, the action returns 130 and disposing the host shuts Python down.
// System.CommandLine ends the process 2 s after Ctrl+C by default, which can cut that shutdown short on a busy machine;
// the runtime bounds its own shutdown at 10 s, so allow a little more than that.
var invocation = new System.CommandLine.InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(12) };
return await CommandCatalog.Create().Parse(args).InvokeAsync(invocation);
