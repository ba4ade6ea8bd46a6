using System.Globalization;

namespace LoraBridge.Server;

/// <summary>
/// The <c>Server-Timing</c> header of a generation response (W3C Server Timing: <c>name;dur=ms, …</c>):
/// <c>queue</c> (waiting behind earlier jobs), <c>load</c> (checkpoint preparation) and <c>engine</c> (the engine's own
/// time for the job, PNG files included). A client's latency minus these is what the HTTP layer added.
/// </summary>
public static class ServerTiming
{
    /// <summary>Formats the header value.</summary>
    public static string Format(TimeSpan queue, TimeSpan load, TimeSpan engine) => string.Create(CultureInfo.InvariantCulture,
        $"queue;dur={queue.TotalMilliseconds:F1}, load;dur={load.TotalMilliseconds:F1}, engine;dur={engine.TotalMilliseconds:F1}");

    /// <summary>Reads <c>name;dur=ms</c> entries (others are skipped); durations in milliseconds by name.</summary>
    public static IReadOnlyDictionary<string, double> Parse(string header)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var entry in header.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split(';', StringSplitOptions.TrimEntries);
            var dur = parts.Skip(1).FirstOrDefault(p => p.StartsWith("dur=", StringComparison.Ordinal));
            if (dur is not null && double.TryParse(dur[4..], NumberStyles.Float, CultureInfo.InvariantCulture, out var ms)) result[parts[0]] = ms;
        }
        return result;
    }
}
