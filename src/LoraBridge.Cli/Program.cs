using System.Runtime.InteropServices;
using LoraBridge.Cli;

// Ctrl+C: System.CommandLine cancels the action's token; the Python runtime turns that into a
// KeyboardInterrupt on its thread, the action returns 130 and disposing the host shuts Python down.
// SIGTERM takes the same clean path (weights restored, no partial file) and exits 143, as shells report it.
var parse = CommandCatalog.Create().Parse(args);
if (parse.Errors.Count > 0)
{
    // Invalid input: one line per problem and exit 2 (System.CommandLine's default is 1 plus the whole help).
    foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {LoraBridge.Engine.TerminalText.Escape(error.Message)}");
    Console.Error.WriteLine("run with --help for usage");
    return 2;
}
using var terminate = new CancellationTokenSource();
bool terminated = false;
using var sigterm = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true; // no abrupt exit: cancel the command and let it clean up
    terminated = true;
    terminate.Cancel();
});
int code = await parse.InvokeAsync(cancellationToken: terminate.Token);
return terminated && code == CliHost.CancelledExitCode ? CliHost.TerminatedExitCode : code;
