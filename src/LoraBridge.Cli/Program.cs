using System.Runtime.InteropServices;
using LoraBridge.Cli;

StartupTimings.MainEntered();

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
int signalled = 0; // the exit code of the first signal: 130 (SIGINT) or 143 (SIGTERM)
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true; // no abrupt exit: cancel the command and let it clean up
    int exitCode = context.Signal == PosixSignal.SIGTERM ? CliHost.TerminatedExitCode : CliHost.CancelledExitCode;
    if (Interlocked.CompareExchange(ref signalled, exitCode, 0) != 0) return;
    terminate.Cancel();
    // Work that cannot be cancelled (native code, a stuck read) must not make the process immortal: give the clean
    // path 12 s (the runtime bounds its own shutdown at 10 s), then leave at once. Every file is written atomically, so nothing half-written remains.
    _ = Task.Delay(TimeSpan.FromSeconds(12)).ContinueWith(_ => Exit.Now(exitCode), TaskScheduler.Default);
}
// Our own handlers for both signals (System.CommandLine's are switched off below): its SIGTERM path returned the
// action's 130, and only one handler decides here.
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
int code = await parse.InvokeAsync(new System.CommandLine.InvocationConfiguration { ProcessTerminationTimeout = null }, terminate.Token);
return signalled == CliHost.TerminatedExitCode && code == CliHost.CancelledExitCode ? CliHost.TerminatedExitCode : code;

internal static partial class Exit
{
    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void _exit(int status);

    public static void Now(int status)
    {
        Console.Error.WriteLine("terminated");
        Console.Error.Flush();
        _exit(status);
    }
}
