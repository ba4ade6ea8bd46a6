using System.Collections.Concurrent;
using System.Diagnostics;

namespace LoraBridge.Python;

/// <summary>
/// Opt-in wall time per <c>bridge.py</c> function (count, total, first call), so <c>--verbose</c> and the start-up
/// benchmark can say where a command's time goes. Off by default: then a call costs one flag read.
/// </summary>
public static class BridgeCallTimings
{
    private static readonly ConcurrentDictionary<string, Totals> s_totals = new(StringComparer.Ordinal);

    /// <summary>Whether calls are being timed.</summary>
    public static bool Enabled { get; set; }

    /// <summary>One function's calls.</summary>
    /// <param name="Name">The <c>bridge.py</c> function (or <c>import lorabridge.bridge</c>).</param>
    /// <param name="Count">Calls made.</param>
    /// <param name="Total">Summed wall time.</param>
    /// <param name="First">Wall time of the first call.</param>
    public sealed record Entry(string Name, int Count, TimeSpan Total, TimeSpan First);

    private sealed class Totals
    {
        public int Count;
        public long Ticks;
        public long FirstTicks;
    }

    internal static void Record(string name, long startTimestamp)
    {
        long ticks = Stopwatch.GetTimestamp() - startTimestamp;
        var t = s_totals.GetOrAdd(name, static _ => new Totals());
        lock (t)
        {
            if (t.Count == 0) t.FirstTicks = ticks;
            t.Count++;
            t.Ticks += ticks;
        }
    }

    /// <summary>What was recorded so far.</summary>
    public static IReadOnlyList<Entry> Snapshot() =>
        [.. s_totals.Select(kv => { lock (kv.Value) return new Entry(kv.Key, kv.Value.Count, Stopwatch.GetElapsedTime(0, kv.Value.Ticks), Stopwatch.GetElapsedTime(0, kv.Value.FirstTicks)); })
            .OrderBy(e => e.Name, StringComparer.Ordinal)];

    /// <summary>Forgets what was recorded.</summary>
    public static void Clear() => s_totals.Clear();
}
