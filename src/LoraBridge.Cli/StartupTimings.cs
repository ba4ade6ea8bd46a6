using System.Diagnostics;
using System.Globalization;
using LoraBridge.Python;

namespace LoraBridge.Cli;

/// <summary>
/// Where a command's start-up time goes, printed with <c>--verbose</c> as one <c>timings:</c> line after Python has
/// shut down (the start-up benchmark parses it): process start to <c>main</c>, discovery, embedded boot, and the
/// bridge calls that load the model, run the first step and decode.
/// </summary>
public static class StartupTimings
{
    private static long s_mainTimestamp;
    private static DateTime s_mainClock;

    /// <summary>Called first thing in <c>main</c>: two clock reads; the process start time is read only by <see cref="Write"/>.</summary>
    public static void MainEntered()
    {
        s_mainTimestamp = Stopwatch.GetTimestamp();
        s_mainClock = DateTime.Now;
    }

    // The kernel's start time of this process (10 ms resolution) to main; null when it cannot be read.
    private static TimeSpan? StartToMain()
    {
        if (s_mainTimestamp == 0) return null;
        try
        {
            using var self = Process.GetCurrentProcess();
            return s_mainClock - self.StartTime;
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return null;
        }
    }

    private static TimeSpan? s_hostReady;

    /// <summary>Called when a command's host is built and its action is about to run.</summary>
    public static void HostReady() => s_hostReady ??= SinceMain;

    /// <summary>Time since <c>main</c> was entered.</summary>
    public static TimeSpan SinceMain => s_mainTimestamp == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(s_mainTimestamp);

    /// <summary>Writes the <c>timings:</c> line (milliseconds; <c>-</c> for phases that did not happen).</summary>
    public static void Write(TextWriter output, PythonRuntimeProvider provider)
    {
        var calls = BridgeCallTimings.Snapshot().ToDictionary(e => e.Name, StringComparer.Ordinal);
        static string Ms(TimeSpan? t) => t is { } v ? v.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) : "-";
        TimeSpan? First(string name) => calls.TryGetValue(name, out var e) ? e.First : null;
        TimeSpan? Total(string name) => calls.TryGetValue(name, out var e) ? e.Total : null;
        TimeSpan? Sum(params TimeSpan?[] parts) => parts.All(p => p is null) ? null : parts.Aggregate(TimeSpan.Zero, (a, p) => a + (p ?? TimeSpan.Zero));
        var fields = new (string Name, TimeSpan? Value)[]
        {
            ("start_to_main", StartToMain()),
            ("host_ready", s_hostReady),
            ("discovery", provider.DiscoveryDuration),
            ("boot", provider.BootDuration),
            ("bridge_import", First("import lorabridge.bridge")),
            ("demo_check", Total("ensure_demo_model")),
            ("model_load", Total("gen_load_checkpoint")),
            ("encode", Total("gen_encode")),
            ("first_step", Sum(First("gen_start"), First("gen_step"))),
            ("decode", Total("gen_decode_png")),
            ("shutdown", provider.Started?.ShutdownDuration),
            ("main_to_exit", SinceMain),
        };
        output.WriteLine("timings: " + string.Join(' ', fields.Select(f => $"{f.Name}={Ms(f.Value)}")) +
                         $" cache={(provider.Report is { } r ? (r.UsedCache ? "used" : "probed") : "-")}");
    }
}
