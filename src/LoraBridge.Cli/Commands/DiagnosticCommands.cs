using System.CommandLine;
using System.Globalization;
using LoraBridge.Python;
using Microsoft.Extensions.DependencyInjection;

namespace LoraBridge.Cli.Commands;

/// <summary>Hidden commands that exercise the runtime end to end (the CLI tests use them).</summary>
public static class DiagnosticCommands
{
    /// <summary>Adds the hidden <c>python-loop</c>.</summary>
    public static void Register(RootCommand root)
    {
        var seconds = new Option<double>("--seconds") { Description = "How long the loop runs", DefaultValueFactory = _ => 60 };
        var loop = new Command("python-loop", "Run a pure-Python loop on the Python thread until it ends or Ctrl+C interrupts it") { Hidden = true };
        loop.Add(seconds);
        loop.SetAction((parse, ct) => CliHost.RunAsync(parse, ct, async (sp, token) =>
        {
            var bridge = sp.GetRequiredService<PythonBridge>();
            await bridge.EchoAsync("warm-up", token); // boots Python and imports torch before announcing the loop
            Console.Out.WriteLine("python loop running");
            Console.Out.Flush();
            try
            {
                var n = await bridge.BusyLoopAsync(parse.GetValue(seconds), BusyLoopKind.Python, token);
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"python loop completed after {n} iterations"));
                return 0;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                var (state, iterations) = await bridge.GetLastLoopStateAsync(CancellationToken.None);
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"python loop {state} after {iterations} iterations"));
                return CliHost.CancelledExitCode;
            }
        }));
        root.Add(loop);
    }
}
