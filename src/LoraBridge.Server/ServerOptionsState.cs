using System.Text.Json.Nodes;

namespace LoraBridge.Server;

/// <summary>
/// The subset of A1111's <c>/sdapi/v1/options</c> LoraBridge acts on; other keys are accepted and echoed back so
/// clients that save and restore options keep working.
/// </summary>
public sealed class ServerOptionsState(string? outputDir)
{
    private readonly Lock _lock = new();
    private readonly JsonObject _other = [];

    /// <summary><c>sd_model_checkpoint</c>: the checkpoint name new jobs use (null: the configured default).</summary>
    public string? Checkpoint { get; private set; }

    /// <summary><c>CLIP_stop_at_last_layers</c>.</summary>
    public int ClipSkip { get; private set; } = 1;

    /// <summary><c>eta_noise_seed_delta</c>.</summary>
    public long EtaNoiseSeedDelta { get; private set; }

    /// <summary><c>randn_source</c>: GPU, CPU or NV.</summary>
    public string RandnSource { get; private set; } = "GPU";

    /// <summary><c>samples_save</c>: A1111's "always save all generated images"; the API's default for <c>save_images</c> here.</summary>
    public bool SamplesSave { get; private set; }

    /// <summary><c>outdir_txt2img_samples</c>; null: <c>outputs/txt2img-images/DATE</c>.</summary>
    public string? OutputDir { get; private set; } = outputDir;

    /// <summary>Defaults for a txt2img request.</summary>
    public Txt2ImgRequest.Defaults RequestDefaults()
    {
        lock (_lock) return new(ClipSkip, EtaNoiseSeedDelta, RandnSource, SamplesSave);
    }

    /// <summary>The options as A1111 returns them.</summary>
    public JsonObject ToJson(string? checkpointTitle)
    {
        lock (_lock)
        {
            var o = (JsonObject)_other.DeepClone();
            o["sd_model_checkpoint"] = checkpointTitle;
            o["CLIP_stop_at_last_layers"] = ClipSkip;
            o["eta_noise_seed_delta"] = EtaNoiseSeedDelta;
            o["randn_source"] = RandnSource;
            o["samples_save"] = SamplesSave;
            o["outdir_txt2img_samples"] = OutputDir ?? "";
            o["samples_format"] = "png";
            return o;
        }
    }

    /// <summary>Checks every key first, then applies them all (a bad value changes nothing).</summary>
    /// <returns>The checkpoint name to switch to, or null when unchanged.</returns>
    /// <exception cref="ApiError">A value of the wrong type or out of range, naming the key.</exception>
    public string? Apply(JsonObject changes)
    {
        int clip = changes.ContainsKey("CLIP_stop_at_last_layers") ? Txt2ImgRequest.Int(changes, "CLIP_stop_at_last_layers", ClipSkip, 1, 12) : ClipSkip;
        long ensd = changes.ContainsKey("eta_noise_seed_delta") ? Txt2ImgRequest.Long(changes, "eta_noise_seed_delta", EtaNoiseSeedDelta) : EtaNoiseSeedDelta;
        string randn = changes.ContainsKey("randn_source") ? Txt2ImgRequest.Str(changes, "randn_source", RandnSource, 8) : RandnSource;
        if (randn is not ("GPU" or "CPU" or "NV")) throw ApiError.Invalid("randn_source", $"must be GPU, CPU or NV, got '{randn}'");
        bool save = changes.ContainsKey("samples_save") ? Txt2ImgRequest.Bool(changes, "samples_save", SamplesSave) : SamplesSave;
        string? outDir = changes.ContainsKey("outdir_txt2img_samples") ? Txt2ImgRequest.Str(changes, "outdir_txt2img_samples", "", 4096) : OutputDir;
        string? checkpoint = changes.ContainsKey("sd_model_checkpoint") ? A1111Server.CheckpointName(Txt2ImgRequest.Str(changes, "sd_model_checkpoint", "", 1024)) : null;
        lock (_lock)
        {
            ClipSkip = clip;
            EtaNoiseSeedDelta = ensd;
            RandnSource = randn;
            SamplesSave = save;
            OutputDir = string.IsNullOrEmpty(outDir) ? null : outDir;
            foreach (var (k, v) in changes)
                if (k is not ("sd_model_checkpoint" or "CLIP_stop_at_last_layers" or "eta_noise_seed_delta" or "randn_source" or "samples_save" or "outdir_txt2img_samples"))
                    _other[k] = v?.DeepClone();
        }
        return checkpoint;
    }

    /// <summary>Records the checkpoint new jobs use.</summary>
    public void SetCheckpoint(string? name)
    {
        lock (_lock) Checkpoint = name;
    }
}
