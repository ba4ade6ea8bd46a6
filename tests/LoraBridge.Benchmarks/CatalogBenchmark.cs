using System.Diagnostics;
using System.Text;
using LoraBridge.Models;

namespace LoraBridge.Benchmarks;

/// <summary>
/// <c>catalog [N]</c>: N (default 10,000) tiny LoRA files in 50 folders; cold and warm catalog scans through the index,
/// one name lookup from the index, against a plain walk + stat of every file measured in the same run. Prints whether
/// the warm scan meets the 2 s target and the process's peak working set.
/// </summary>
internal static class CatalogBenchmark
{
    public static int Run(string[] args)
    {
        int n = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 10_000;
        string root = Path.Combine(Path.GetTempPath(), "lbr-catalog-bench-" + Guid.NewGuid().ToString("N"));
        string lora = Path.Combine(root, "models", "Lora");
        try
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) WriteTiny(Path.Combine(lora, $"folder{i % 50:00}", $"lora{i:00000}.safetensors"), i);
            Console.WriteLine($"built {n} files in 50 folders in {clock.Elapsed.TotalSeconds:0.00} s");
            var options = new CatalogOptions { WebUiDir = root, DataDir = Path.Combine(root, "data") };

            clock.Restart();
            long stats = 0;
            foreach (var f in FileWalk.Files(lora, LoraCatalog.LoraExtensions)) stats += new FileInfo(f).Length > 0 ? 1 : 0;
            double floor = clock.Elapsed.TotalSeconds;

            clock.Restart();
            int cold = new LoraCatalog(options).Loras.Count;
            double coldS = clock.Elapsed.TotalSeconds;

            clock.Restart();
            var warmCatalog = new LoraCatalog(options);
            int warm = warmCatalog.Loras.Count;
            double warmS = clock.Elapsed.TotalSeconds;

            clock.Restart();
            var hit = new LoraCatalog(options).TryFind($"lora{n / 2:00000}");
            double lookupS = clock.Elapsed.TotalSeconds;

            Console.WriteLine($"{"walk + stat every file (floor)",-40} {floor,8:0.000} s   1.00x   ({stats} files)");
            Console.WriteLine($"{"cold scan (reads every header)",-40} {coldS,8:0.000} s {coldS / floor,6:0.00}x   ({cold} entries)");
            Console.WriteLine($"{"warm scan (index, stat only)",-40} {warmS,8:0.000} s {warmS / floor,6:0.00}x   ({warm} entries, {warmCatalog.Index?.LastReread} re-read)   target <= 2 s: {(warmS <= 2 ? "met" : "NOT met")}");
            Console.WriteLine($"{"one name from the index",-40} {lookupS,8:0.000} s {lookupS / floor,6:0.00}x   ({(hit is null ? "not found" : hit.Name)})");
            Console.WriteLine($"peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / (1024 * 1024)} MiB");
            return 0;
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private static void WriteTiny(string path, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string header = "{\"__metadata__\":{\"ss_output_name\":\"out" + seed + "\",\"ss_base_model_version\":\"sd_v1\"}," +
            "\"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight\":{\"dtype\":\"F32\",\"shape\":[1,8],\"data_offsets\":[0,32]}," +
            "\"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight\":{\"dtype\":\"F32\",\"shape\":[8,1],\"data_offsets\":[32,64]}}";
        var h = Encoding.UTF8.GetBytes(header);
        var data = new byte[64];
        new Random(seed).NextBytes(data);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes((long)h.Length));
        fs.Write(h);
        fs.Write(data);
    }
}
