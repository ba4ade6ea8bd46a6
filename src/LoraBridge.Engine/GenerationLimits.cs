using System.Globalization;

namespace LoraBridge.Engine;

/// <summary>
/// The upper limits LoraBridge enforces on what a command line, a template or a data file asks for, and the memory
/// estimate checked before anything is allocated. Every real use fits (A1111's UI stops at 150 steps, 2048 px and
/// batch size 8); the limits exist so that a typo or a hostile template costs an error, not gigabytes or hours.
/// One home for them, so the parsers (sizes, options, templates) only call in here.
/// </summary>
public static class GenerationLimits
{
    /// <summary>Most sampling steps per job.</summary>
    public const int MaxSteps = 1000;
    /// <summary>Largest width or height in pixels (and each must be a multiple of 8).</summary>
    public const int MaxSide = 8192;
    /// <summary>Most images per sampler run.</summary>
    public const int MaxBatchSize = 64;
    /// <summary>Most sampler runs per job.</summary>
    public const int MaxBatchCount = 1000;
    /// <summary>Most torch CPU threads.</summary>
    public const int MaxThreads = 1024;
    /// <summary>Most characters in a prompt or a negative prompt (about 25,000 CLIP tokens).</summary>
    public const int MaxPromptChars = 100_000;
    // The batch limits (jobs per template, --data rows and bytes) live beside the code that reads templates:
    // LoraBridge.Batch.BatchTemplate.MaxJobs, BatchData.MaxRows, BatchData.MaxBytes (that project references no other).
    /// <summary>Largest absolute CFG scale.</summary>
    public const double MaxCfg = 100;
    /// <summary>Largest absolute LoRA multiplier.</summary>
    public const double MaxMultiplier = 100;

    /// <summary>Checks every limit of <paramref name="r"/>; <paramref name="availableBytes"/> (default: this machine's memory) bounds the estimate.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names the option and the limit.</exception>
    public static void Check(GenerationRequest r, long? availableBytes = null)
    {
        if (r.Steps is < 1 or > MaxSteps) throw new ArgumentException($"--steps must be between 1 and {MaxSteps}, got {r.Steps}");
        CheckSide("width", r.Width);
        CheckSide("height", r.Height);
        if (r.BatchSize is < 1 or > MaxBatchSize) throw new ArgumentException($"--batch-size must be between 1 and {MaxBatchSize}, got {r.BatchSize}");
        if (r.BatchCount is < 1 or > MaxBatchCount) throw new ArgumentException($"--batch-count must be between 1 and {MaxBatchCount}, got {r.BatchCount}");
        CheckFinite("--cfg", r.CfgScale, MaxCfg);
        if (r.Prompt.Length > MaxPromptChars) throw new ArgumentException($"the prompt has {r.Prompt.Length} characters, more than the limit of {MaxPromptChars}");
        if (r.NegativePrompt.Length > MaxPromptChars) throw new ArgumentException($"--negative has {r.NegativePrompt.Length} characters, more than the limit of {MaxPromptChars}");
        long available = availableBytes ?? AvailableBytes();
        CheckMemory(r.Width, r.Height, r.BatchSize, available);
        if (r.Hires is { } hr)
        {
            // The second pass decodes at the upscaled size: that is the peak to check.
            if (hr.Steps > MaxSteps) throw new ArgumentException($"--hires-steps must be between 0 and {MaxSteps}, got {hr.Steps}");
            CheckFinite("--hr-scale", hr.Scale, MaxSide / 8.0);
            var (w, h) = HiresRules.Target(r.Width, r.Height, hr);
            if (w > MaxSide || h > MaxSide) throw new ArgumentException($"hires target {w}x{h} is larger than the limit of {MaxSide} per side");
            CheckMemory(w, h, r.BatchSize, available);
        }
    }

    /// <summary>Refuses NaN, infinity and values beyond ±<paramref name="max"/>; <paramref name="name"/> says where (an option, a tag with its position).</summary>
    /// <exception cref="ArgumentException">Not finite or out of range.</exception>
    public static void CheckFinite(string name, double value, double max)
    {
        if (!double.IsFinite(value) || Math.Abs(value) > max)
            throw new ArgumentException($"{name} must be a finite number between {-max} and {max}, got {value.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>A denoising strength: finite, 0 to 1.</summary>
    /// <exception cref="ArgumentException">Out of range.</exception>
    public static void CheckDenoise(string name, double value)
    {
        if (!double.IsFinite(value) || value < 0 || value > 1)
            throw new ArgumentException($"{name} must be between 0 and 1, got {value.ToString(CultureInfo.InvariantCulture)}");
    }

    private static void CheckSide(string which, int side)
    {
        if (side < 8 || side > MaxSide || side % 8 != 0)
            throw new ArgumentException($"--size: {which} must be a multiple of 8 between 8 and {MaxSide}, got {side}");
    }

    /// <summary>
    /// Bytes a job needs at its peak, which is the VAE decode at full resolution: SD's VAE runs 128-channel float32
    /// convolutions over every pixel, and a convolution holds its input, its output and a group-norm temporary
    /// (4 such buffers). The UNet works at 1/8 of the side and its attention is computed in blocks, so it stays below.
    /// </summary>
    public static long EstimateBytes(int width, int height, int batchSize) => (long)batchSize * width * height * 128 * 4 * 4;

    /// <summary>Refuses a size that cannot fit, saying what would.</summary>
    /// <exception cref="ArgumentException">The estimate exceeds <paramref name="availableBytes"/>.</exception>
    public static void CheckMemory(int width, int height, int batchSize, long availableBytes)
    {
        long need = EstimateBytes(width, height, batchSize);
        if (need <= availableBytes) return;
        // The largest square (multiple of 64) that fits at this batch size, and the batch size that fits at this size.
        int side = (int)Math.Min(MaxSide, Math.Floor(Math.Sqrt(availableBytes / (double)EstimateBytes(1, 1, batchSize)) / 64) * 64);
        long perImage = EstimateBytes(width, height, 1);
        long fitBatch = availableBytes / perImage;
        string hint = fitBatch >= 1
            ? $"batch size {fitBatch} fits at this size, or about {side}x{side} at batch size {batchSize}"
            : side >= 64 ? $"about {side}x{side} fits at batch size {batchSize}" : "nothing this large fits";
        throw new ArgumentException(
            $"--size {width}x{height} with --batch-size {batchSize} needs about {Gb(need)} to decode, more than the {Gb(availableBytes)} " +
            $"this machine has; {hint}");
    }

    /// <summary>Physical memory (or the container's limit) as .NET sees it.</summary>
    public static long AvailableBytes() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    private static string Gb(long bytes) => (bytes / 1e9).ToString("0.#", CultureInfo.InvariantCulture) + " GB";

    /// <summary>
    /// Why <paramref name="folder"/> cannot take output (it is a file, or it or the folder it would be made in is not
    /// writable), or null when it can. Nothing is created: a refused job leaves no empty folder behind. Checked before
    /// any work, so a bad <c>--out</c> does not lose a render.
    /// </summary>
    /// <param name="folder">The folder.</param>
    /// <param name="option">How the user named it (e.g. <c>--out</c>), for the message.</param>
    public static string? FolderProblem(string folder, string option)
    {
        try
        {
            var full = Path.GetFullPath(folder);
            if (File.Exists(full)) return $"{option} {folder} is a file, not a folder";
            // The folder itself, or the nearest existing folder above it that would hold it.
            var probeDir = full;
            while (!Directory.Exists(probeDir))
            {
                var parent = Path.GetDirectoryName(probeDir);
                if (parent is null) return $"{option} {folder} cannot be made: no existing folder above it";
                if (File.Exists(parent)) return $"{option} {folder} cannot be made: {parent} is a file";
                probeDir = parent;
            }
            var probe = Models.AtomicFile.WriteTemp(probeDir, []);
            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return $"{option} {folder} cannot be written: {e.Message}";
        }
    }
}
