using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LoraBridge.Models;
using LoraBridge.Prompting;
using LoraBridge.Tokenizers;

namespace LoraBridge.Benchmarks;

/// <summary>
/// Textual-inversion database and matching: `dotnet run -c Release --project tests/LoraBridge.Benchmarks -- embeddings
/// [--files N] [--shared DIR]`.
/// Scan: N safetensors embeddings (768 wide, 1-8 vectors, names of 1-3 words) in a temporary folder, cold (no hash
/// cache: every file hashed) and warm (hash cache filled), against a baseline in the same run that only lists and
/// stats the files, and one that reads every file whole. Matching: chunking every prompt of the prompt corpus with a
/// database of N names, against the same chunker without embeddings (tokenization and chunking alone).
/// </summary>
internal static class EmbeddingBenchmark
{
    public static int Run(string[] args)
    {
        int files = 1000;
        string? shared = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--files" && i + 1 < args.Length) files = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
            else if (args[i] == "--shared" && i + 1 < args.Length) shared = args[++i];
            else
            {
                Console.Error.WriteLine($"embeddings: unknown argument {args[i]}; usage: embeddings [--files N] [--shared DIR]");
                return 2;
            }
        }
        shared ??= TokenizerBenchmark.FindShared();
        if (shared is null)
        {
            Console.Error.WriteLine("embeddings: ../shared not found above the current folder; pass --shared DIR");
            return 2;
        }
        var clipDir = Path.Combine(shared, "data", "clip");
        var tokenizer = ClipTokenizer.FromVocabAndMerges(Path.Combine(clipDir, "vocab.json"), Path.Combine(clipDir, "merges.txt"));
        var root = Directory.CreateTempSubdirectory("lb-emb-bench-").FullName;
        try
        {
            var names = WriteFolder(Path.Combine(root, "embeddings"), files);
            Scan(root, tokenizer, files);
            Match(shared, root, tokenizer, names.Count);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
        return 0;
    }

    private static readonly string[] Words =
    [
        "easy", "negative", "bad", "hands", "style", "portrait", "ink", "glow", "neon", "water", "color", "film", "grain", "anime",
        "sketch", "oil", "paint", "detail", "v2", "v3", "xl", "dark", "light", "mood", "retro", "pixel", "soft", "sharp", "fog", "sky",
    ];

    private static List<string> WriteFolder(string dir, int count)
    {
        var rng = new Random(7);
        var names = new List<string>();
        for (int i = 0; i < count; i++)
        {
            int words = 1 + rng.Next(3);
            string name = string.Join("-", Enumerable.Range(0, words).Select(_ => Words[rng.Next(Words.Length)])) + "-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            names.Add(name);
            int rows = 1 + rng.Next(8);
            var sub = Path.Combine(dir, (i % 10).ToString(System.Globalization.CultureInfo.InvariantCulture));
            Directory.CreateDirectory(sub);
            var header = Encoding.UTF8.GetBytes($"{{\"emb_params\":{{\"dtype\":\"F32\",\"shape\":[{rows},768],\"data_offsets\":[0,{rows * 768 * 4}]}}}}");
            var data = new byte[rows * 768 * 4];
            rng.NextBytes(data);
            using var f = File.Create(Path.Combine(sub, name + ".safetensors"));
            f.Write(BitConverter.GetBytes((long)header.Length));
            f.Write(header);
            f.Write(data);
        }
        return names;
    }

    private static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);

    private static void Scan(string root, ClipTokenizer tokenizer, int files)
    {
        var dir = Path.Combine(root, "embeddings");
        var listing = new List<double>();
        var reading = new List<double>();
        var cold = new List<double>();
        var warm = new List<double>();
        for (int rep = 0; rep < 5; rep++)
        {
            var sw = Stopwatch.StartNew();
            long bytes = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(p => new FileInfo(p).Length);
            listing.Add(sw.Elapsed.TotalMilliseconds);
            sw.Restart();
            long read = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(p => (long)File.ReadAllBytes(p).Length);
            reading.Add(sw.Elapsed.TotalMilliseconds);
            if (read != bytes) throw new InvalidOperationException("files changed during the benchmark");

            var cacheFile = Path.Combine(root, $"hashes-{rep}.json");
            sw.Restart();
            var db = EmbeddingDatabase.LoadAsync([dir], 768, tokenizer, null, new HashCache(cacheFile)).GetAwaiter().GetResult();
            cold.Add(sw.Elapsed.TotalMilliseconds);
            if (db.Loaded.Count != files) throw new InvalidOperationException($"{db.Loaded.Count} of {files} loaded");
            sw.Restart();
            db = EmbeddingDatabase.LoadAsync([dir], 768, tokenizer, null, new HashCache(cacheFile)).GetAwaiter().GetResult();
            warm.Add(sw.Elapsed.TotalMilliseconds);
            if (db.Loaded.Count != files) throw new InvalidOperationException($"{db.Loaded.Count} of {files} loaded");
        }
        double l = Median(listing), r = Median(reading), c = Median(cold), w = Median(warm);
        Console.WriteLine($"scan of {files} safetensors embeddings (median of 5; OS file cache warm):");
        Console.WriteLine($"  baseline list+stat      {l,9:F1} ms");
        Console.WriteLine($"  baseline read all bytes {r,9:F1} ms");
        Console.WriteLine($"  database cold (hashing) {c,9:F1} ms  = {c / r:F2}x read-all, {c / l:F1}x list");
        Console.WriteLine($"  database warm (cached)  {w,9:F1} ms  = {w / r:F2}x read-all, {w / l:F1}x list");
    }

    private static void Match(string shared, string root, ClipTokenizer tokenizer, int count)
    {
        var db = EmbeddingDatabase.LoadAsync([Path.Combine(root, "embeddings")], 768, tokenizer, null, new HashCache(Path.Combine(root, "hashes-0.json")))
            .GetAwaiter().GetResult();
        var prompts = File.ReadLines(Path.Combine(shared, "conformance", "prompts", "public.jsonl"))
            .Where(l => l.Length > 0)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()!)
            .ToList();
        // Emphasis parsing is the same with or without embeddings; it is done once, outside the timing.
        var fragments = prompts.Select(p => Attention.Parse(ExtraNetworks.Parse(p).Prompt))
            .Where(r => r.IsOk).Select(r => r.Value!.Select(f => new WeightedText(f.Text, f.Weight)).ToList()).ToList();
        // A few prompts name embeddings, as shared prompts do.
        var rng = new Random(3);
        var names = db.Loaded.Select(e => e.Name).ToList();
        for (int i = 0; i < fragments.Count; i += 4)
            fragments[i] = [.. fragments[i], new WeightedText(", " + names[rng.Next(names.Count)], 1.0)];

        var plain = new PromptChunker(tokenizer);
        var withEmb = new PromptChunker(tokenizer, embeddings: db.Lookup);
        int fixes = fragments.Sum(f => withEmb.Chunk(f).Chunks.Sum(c => c.FixList.Count));
        var tPlain = new List<double>();
        var tEmb = new List<double>();
        for (int rep = 0; rep < 7; rep++)
        {
            var sw = Stopwatch.StartNew();
            foreach (var f in fragments) plain.Chunk(f);
            tPlain.Add(sw.Elapsed.TotalMilliseconds);
            sw.Restart();
            foreach (var f in fragments) withEmb.Chunk(f);
            tEmb.Add(sw.Elapsed.TotalMilliseconds);
        }
        double p0 = Median(tPlain), e0 = Median(tEmb);
        Console.WriteLine($"matching: {fragments.Count} prompts of the prompt corpus, {count} embedding names, {fixes} placed (median of 7):");
        Console.WriteLine($"  tokenize+chunk alone       {p0 / fragments.Count * 1000,8:F2} us/prompt");
        Console.WriteLine($"  with embedding matching    {e0 / fragments.Count * 1000,8:F2} us/prompt  = {e0 / p0:F3}x");
    }
}
