using System.Text.Json;
using System.Text.Json.Nodes;
using LoraBridge.Engine;

namespace LoraBridge.Server;

/// <summary>
/// A1111 v1.10.1's <c>StableDiffusionTxt2ImgProcessingAPI</c> body read into a <see cref="GenerationRequest"/>:
/// the same field names and defaults; fields LoraBridge does not use are accepted and ignored, as A1111 ignores
/// unknown ones.
/// </summary>
public sealed record Txt2ImgRequest
{
    /// <summary>The engine request (its OutputDir is filled in by the server).</summary>
    public required GenerationRequest Generation { get; init; }

    /// <summary><c>send_images</c>: return base64 PNGs (default true).</summary>
    public bool SendImages { get; init; } = true;

    /// <summary><c>save_images</c>: keep the PNGs in the output folder (default false, as A1111's API).</summary>
    public bool SaveImages { get; init; }

    /// <summary><c>override_settings.sd_model_checkpoint</c> for this request only, or null.</summary>
    public string? Checkpoint { get; init; }

    /// <summary>Keys of <c>alwayson_scripts</c> (A1111's per-request script arguments), in request order.</summary>
    public IReadOnlyList<string> AlwaysOnScripts { get; init; } = [];

    /// <summary>The request's fields with A1111's defaults filled in, echoed back as <c>parameters</c>.</summary>
    public required JsonObject Parameters { get; init; }

    /// <summary>Defaults for what a request leaves out; set from the server's <c>/sdapi/v1/options</c>.</summary>
    public sealed record Defaults(int ClipSkip, long EtaNoiseSeedDelta, string RandnSource, bool SaveImages);

    /// <summary>Reads and checks a request body.</summary>
    /// <exception cref="ApiError">Malformed JSON (400), a wrong type or an out-of-range value (422).</exception>
    public static Txt2ImgRequest Parse(string body, RequestLimits limits, Defaults defaults)
    {
        JsonObject json;
        try
        {
            json = JsonNode.Parse(body, documentOptions: new JsonDocumentOptions { MaxDepth = 32 }) as JsonObject
                ?? throw new ApiError(422, "ValidationError", "the body must be a JSON object");
        }
        catch (JsonException ex)
        {
            throw new ApiError(400, "JSONDecodeError", $"malformed JSON: {ex.Message}");
        }
        var overrides = json["override_settings"] as JsonObject;
        var r = new GenerationRequest
        {
            Prompt = Str(json, "prompt", "", limits.MaxPromptChars),
            NegativePrompt = Str(json, "negative_prompt", "", limits.MaxPromptChars),
            Seed = Long(json, "seed", -1),
            Sampler = Str(json, "sampler_name", null, 64) is { Length: > 0 } s ? s : Str(json, "sampler_index", "Euler a", 64),
            Schedule = Str(json, "scheduler", "Automatic", 64) is { Length: > 0 } sch ? sch : "Automatic",
            Steps = Int(json, "steps", 50, 1, limits.MaxSteps),
            CfgScale = Double(json, "cfg_scale", 7.0, 0, 100),
            Width = Int(json, "width", 512, 8, limits.MaxSide),
            Height = Int(json, "height", 512, 8, limits.MaxSide),
            BatchSize = Int(json, "batch_size", 1, 1, limits.MaxBatchSize),
            BatchCount = Int(json, "n_iter", 1, 1, limits.MaxBatchCount),
            ClipSkip = overrides is null ? defaults.ClipSkip : Int(overrides, "CLIP_stop_at_last_layers", defaults.ClipSkip, 1, 12),
            EtaNoiseSeedDelta = overrides is null ? defaults.EtaNoiseSeedDelta : Long(overrides, "eta_noise_seed_delta", defaults.EtaNoiseSeedDelta),
            RandnSource = overrides is null ? defaults.RandnSource : Str(overrides, "randn_source", defaults.RandnSource, 8),
            OutputDir = "",
            Hires = Bool(json, "enable_hr", false) ? Hires(json, limits) : null,
        };
        if (r.Width % 8 != 0 || r.Height % 8 != 0)
            throw ApiError.Invalid("width/height", $"must be multiples of 8, got {r.Width}x{r.Height}");
        if (r.Seed < -1 || r.Seed > uint.MaxValue) throw ApiError.Invalid("seed", $"must be -1 or between 0 and {uint.MaxValue}, got {r.Seed}");
        var parameters = (JsonObject)json.DeepClone();
        parameters["prompt"] = r.Prompt;
        parameters["negative_prompt"] = r.NegativePrompt;
        parameters["seed"] = r.Seed;
        parameters["sampler_name"] = r.Sampler;
        parameters["scheduler"] = r.Schedule;
        parameters["steps"] = r.Steps;
        parameters["cfg_scale"] = r.CfgScale;
        parameters["width"] = r.Width;
        parameters["height"] = r.Height;
        parameters["batch_size"] = r.BatchSize;
        parameters["n_iter"] = r.BatchCount;
        bool send = Bool(json, "send_images", true), save = Bool(json, "save_images", defaults.SaveImages);
        parameters["send_images"] = send;
        parameters["save_images"] = save;
        return new Txt2ImgRequest
        {
            Generation = r,
            SendImages = send,
            SaveImages = save,
            Checkpoint = overrides is null ? null : Str(overrides, "sd_model_checkpoint", null, 1024),
            Parameters = parameters,
            AlwaysOnScripts = json["alwayson_scripts"] is JsonObject scripts ? [.. scripts.Select(kv => kv.Key)] : [],
        };
    }

    // A1111's hires fix fields (enable_hr, hr_*); the engine checks the combination (HiresRules.Validate → 422).
    private static HiresSettings Hires(JsonObject json, RequestLimits limits) => new()
    {
        Upscaler = Str(json, "hr_upscaler", "Latent", 256) is { Length: > 0 } u ? u : "Latent",
        Scale = Double(json, "hr_scale", 2.0, 1, 8),
        ResizeX = Int(json, "hr_resize_x", 0, 0, limits.MaxSide),
        ResizeY = Int(json, "hr_resize_y", 0, 0, limits.MaxSide),
        Steps = Int(json, "hr_second_pass_steps", 0, 0, limits.MaxSteps),
        DenoisingStrength = Double(json, "denoising_strength", 0.7, 0, 1),
        Prompt = Str(json, "hr_prompt", "", limits.MaxPromptChars),
        NegativePrompt = Str(json, "hr_negative_prompt", "", limits.MaxPromptChars),
        Sampler = Str(json, "hr_sampler_name", null, 64) is { Length: > 0 } s ? s : null,
    };

    // A JSON null means "the default", as pydantic's Optional fields do.
    private static JsonValue? Value(JsonObject o, string key, string kind) => o[key] switch
    {
        null => null,
        JsonValue v => v,
        _ => throw ApiError.Invalid(key, $"must be {kind}"),
    };

    internal static string Str(JsonObject o, string key, string? fallback, int maxChars)
    {
        var v = Value(o, key, "a string");
        if (v is null) return fallback!;
        if (!v.TryGetValue<string>(out var s)) throw ApiError.Invalid(key, "must be a string");
        if (s.Length > maxChars) throw ApiError.Invalid(key, $"is {s.Length} characters long, the limit is {maxChars}");
        return s;
    }

    internal static int Int(JsonObject o, string key, int fallback, int min, int max)
    {
        var v = Value(o, key, "an integer");
        if (v is null) return fallback;
        if (!v.TryGetValue<long>(out var n) && !(v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < 1e15 && (n = (long)d) == d))
            throw ApiError.Invalid(key, "must be an integer");
        if (n < min || n > max) throw ApiError.Invalid(key, $"must be between {min} and {max}, got {n}");
        return (int)n;
    }

    internal static long Long(JsonObject o, string key, long fallback)
    {
        var v = Value(o, key, "an integer");
        if (v is null) return fallback;
        if (v.TryGetValue<long>(out var n)) return n;
        throw ApiError.Invalid(key, "must be an integer");
    }

    internal static double Double(JsonObject o, string key, double fallback, double min, double max)
    {
        var v = Value(o, key, "a number");
        if (v is null) return fallback;
        if (!v.TryGetValue<double>(out var d) || double.IsNaN(d)) throw ApiError.Invalid(key, "must be a number");
        if (d < min || d > max) throw ApiError.Invalid(key, $"must be between {min} and {max}, got {d}");
        return d;
    }

    internal static bool Bool(JsonObject o, string key, bool fallback)
    {
        var v = Value(o, key, "true or false");
        if (v is null) return fallback;
        if (v.TryGetValue<bool>(out var b)) return b;
        throw ApiError.Invalid(key, "must be true or false");
    }
}
