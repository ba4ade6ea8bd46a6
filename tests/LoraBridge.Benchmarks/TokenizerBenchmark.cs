using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LoraBridge.Tokenizers;

namespace LoraBridge.Benchmarks;

/// <summary>
/// CLIP tokenizer throughput: `dotnet run -c Release --project tests/LoraBridge.Benchmarks -- tokenizer [--seconds S] [--shared DIR]`.
/// Baseline in the same run: .NET lowercasing + UTF-8 encoding + a compiled Regex split with CLIP's pattern over the
/// same texts (the cheapest thing that still looks at every character), so the ratio shows what normalisation and
/// BPE cost on top of a plain split.
/// </summary>
internal static class TokenizerBenchmark
{
    private const string ClipPattern =
        @"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

    public static int Run(string[] args)
    {
        double seconds = 2;
        string? shared = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--seconds" && i + 1 < args.Length) seconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
            else if (args[i] == "--shared" && i + 1 < args.Length) shared = args[++i];
            else
            {
                Console.Error.WriteLine($"tokenizer: unknown argument {args[i]}; usage: tokenizer [--seconds S] [--shared DIR]");
                return 2;
            }
        }
        shared ??= FindShared();
        if (shared == null)
        {
            Console.Error.WriteLine("tokenizer: ../shared not found above the current folder; pass --shared DIR");
            return 2;
        }
        var clipDir = Path.Combine(shared, "data", "clip");

        var sw = Stopwatch.StartNew();
        var fromJson = ClipTokenizer.FromVocabAndMerges(Path.Combine(clipDir, "vocab.json"), Path.Combine(clipDir, "merges.txt"));
        double loadJson = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        ClipTokenizer.FromBpeGz(Path.Combine(clipDir, "bpe_simple_vocab_16e6.txt.gz"));
        double loadGz = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        ClipTokenizer.FromVocabAndMerges(Path.Combine(clipDir, "vocab.json"), Path.Combine(clipDir, "merges.txt"));
        double reloadJson = sw.Elapsed.TotalMilliseconds;
        Console.WriteLine($"load: vocab.json+merges.txt {loadJson:F0} ms (first, incl. JIT), again {reloadJson:F0} ms; " +
                          $"bpe_simple_vocab_16e6.txt.gz {loadGz:F0} ms");

        var corpus = File.ReadLines(Path.Combine(shared, "conformance", "tokens", "clip_tokens.public.jsonl"))
            .Where(l => l.Length > 0)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!)
            .ToArray();
        var synthetic = SyntheticPrompts(2000, seed: 42);

        Console.WriteLine("corpus        texts   tokens/pass  cold tok/s   warm tok/s  baseline pre-tok/s  warm time ratio vs baseline");
        Measure("public", corpus, clipDir, seconds);
        Measure("synthetic", synthetic, clipDir, seconds);
        GC.KeepAlive(fromJson);
        return 0;
    }

    private static void Measure(string name, string[] texts, string clipDir, double seconds)
    {
        // Cold: a fresh tokenizer, so every word goes through BPE once.
        var tok = ClipTokenizer.FromDirectory(clipDir);
        var sw = Stopwatch.StartNew();
        long tokens = 0;
        foreach (var t in texts) tokens += tok.Encode(t).Length;
        double cold = sw.Elapsed.TotalSeconds;

        var ids = new List<int>(256);
        double warmPerPass = TimePerPass(() =>
        {
            foreach (var t in texts)
            {
                ids.Clear();
                tok.Encode(t, ids);
            }
        }, seconds);

        var regex = new Regex(ClipPattern, RegexOptions.IgnoreCase | RegexOptions.Compiled | RegexOptions.CultureInvariant);
        long pieces = 0;
        foreach (var t in texts) pieces += regex.Count(t.ToLowerInvariant());
        long sink = 0;
        double basePerPass = TimePerPass(() =>
        {
            foreach (var t in texts)
            {
                var lower = t.ToLowerInvariant();
                sink += Encoding.UTF8.GetByteCount(lower);
                foreach (var m in regex.EnumerateMatches(lower)) sink += m.Length;
            }
        }, seconds);
        GC.KeepAlive(sink);

        Console.WriteLine($"{name,-12} {texts.Length,6} {tokens,12} {tokens / cold,11:F0} {tokens / warmPerPass,12:F0} {pieces / basePerPass,19:F0} {warmPerPass / basePerPass,10:F2}x slower");
    }

    private static double TimePerPass(Action pass, double seconds)
    {
        pass(); // warm-up / JIT
        int passes = 0;
        var sw = Stopwatch.StartNew();
        do
        {
            pass();
            passes++;
        } while (sw.Elapsed.TotalSeconds < seconds);
        return sw.Elapsed.TotalSeconds / passes;
    }

    // A1111-style prompts: tags, weights, commas, BREAK, numbers, some non-ASCII; mostly reused words like real prompts.
    private static string[] SyntheticPrompts(int count, int seed)
    {
        string[] words =
        [
            "masterpiece", "best quality", "1girl", "solo", "long hair", "looking at viewer", "smile", "blue eyes",
            "detailed background", "cinematic lighting", "8k", "ultra-detailed", "photorealistic", "portrait",
            "night sky", "neon lights", "cyberpunk city", "rain", "reflections", "bokeh", "sharp focus",
            "by greg rutkowski", "artstation", "octane render", "volumetric fog", "café", "naïve art", "日本庭園",
            "🌸 cherry blossoms", "steampunk", "watercolor", "it's raining", "the 1920s", "f/1.8", "35mm",
        ];
        var rng = new Random(seed);
        var prompts = new string[count];
        var sb = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            sb.Clear();
            int n = rng.Next(5, 40);
            for (int k = 0; k < n; k++)
            {
                if (k > 0) sb.Append(rng.Next(10) == 0 ? " BREAK " : ", ");
                var w = words[rng.Next(words.Length)];
                switch (rng.Next(6))
                {
                    case 0: sb.Append('(').Append(w).Append(':').Append((0.5 + rng.NextDouble()).ToString("F2", System.Globalization.CultureInfo.InvariantCulture)).Append(')'); break;
                    case 1: sb.Append("((").Append(w).Append("))"); break;
                    case 2: sb.Append(w).Append(rng.Next(1000)); break;
                    default: sb.Append(w); break;
                }
            }
            prompts[i] = sb.ToString();
        }
        return prompts;
    }

    internal static string? FindShared()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "..", "shared");
                if (File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")) && Directory.Exists(Path.Combine(candidate, "data", "clip")))
                    return Path.GetFullPath(candidate);
            }
        }
        return null;
    }
}
