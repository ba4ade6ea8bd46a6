using LoraBridge.Python;

namespace LoraBridge.Engine;

/// <summary>One model call's CFG output, lent to after-CFG hooks while the step waits for them.</summary>
/// <remarks>
/// <see cref="Denoised"/> names the torch tensor [batch, channels, height/8, width/8] the sampler update is about to
/// use; Python code may change it in place (CFG rescale, dynamic thresholding). The handle is valid only while the
/// hook runs: used later it fails with a message saying it outlived its step. For DDIM it is the guided eps
/// prediction, as A1111's <c>on_cfg_after_cfg</c> gets it for timestep samplers.
/// </remarks>
public sealed class CfgStep(TensorHandle denoised, int step, int totalSteps, double sigma)
{
    /// <summary>The combined (guided) output; modifiable in place from Python.</summary>
    public TensorHandle Denoised { get; } = denoised;

    /// <summary>1-based model call of this pass (a hires pass counts from 1 again).</summary>
    public int Step { get; } = step;

    /// <summary>Model calls of this pass.</summary>
    public int TotalSteps { get; } = totalSteps;

    /// <summary>Noise level of the call (k-diffusion sigma; the timestep for DDIM).</summary>
    public double Sigma { get; } = sigma;

    /// <summary>
    /// The positive prediction <see cref="Denoised"/> was mixed from (the AND-parts at scale 1), for hooks such as CFG
    /// rescale; valid, like <see cref="Denoised"/>, only while the hook runs. Changing it changes nothing.
    /// </summary>
    public TensorHandle Cond { get; init; }

    /// <summary>The negative prediction <see cref="Denoised"/> was mixed from; valid only while the hook runs.</summary>
    public TensorHandle Uncond { get; init; }
}

/// <summary>
/// An image about to be written, lent to before-save hooks: they may change its pixels, its size (with matching
/// pixels) and its infotext parameters, or add parameters of their own.
/// </summary>
public sealed class ImageToSave
{
    /// <summary>Creates the image from decoded pixels and the infotext the engine made for it.</summary>
    public ImageToSave(byte[] pixels, int width, int height, Infotext infotext, long seed, int index)
    {
        Pixels = pixels;
        Width = width;
        Height = height;
        Prompt = infotext.Prompt;
        NegativePrompt = infotext.NegativePrompt;
        var parameters = new OrderedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in infotext.Parameters) parameters[k] = v;
        Parameters = parameters;
        Seed = seed;
        Index = index;
    }

    /// <summary>8-bit RGB, rows top to bottom, 3 bytes a pixel: <see cref="Width"/> × <see cref="Height"/> × 3 bytes.</summary>
    public byte[] Pixels { get; set; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; set; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; set; }

    /// <summary>Infotext "Key: value" parameters in order (A1111's <c>extra_generation_params</c> go here too).</summary>
    public IDictionary<string, string> Parameters { get; }

    /// <summary>The prompt line(s) of the infotext.</summary>
    public string Prompt { get; }

    /// <summary>The negative prompt of the infotext.</summary>
    public string NegativePrompt { get; }

    /// <summary>The image's seed.</summary>
    public long Seed { get; }

    /// <summary>0-based image number within the job.</summary>
    public int Index { get; }

    /// <summary>
    /// The infotext as it will be written. Parameters added by hooks go before "Version", which A1111 writes after its
    /// <c>extra_generation_params</c>.
    /// </summary>
    public Infotext Infotext
    {
        get
        {
            var list = Parameters.ToList();
            int version = list.FindIndex(p => p.Key == "Version");
            if (version >= 0 && version < list.Count - 1)
            {
                var v = list[version];
                list.RemoveAt(version);
                list.Add(v);
            }
            return new(Prompt, NegativePrompt, list);
        }
    }

    /// <summary>Checks what a hook may have changed.</summary>
    /// <exception cref="ArgumentException">Pixels that do not match the size, or a parameter name the infotext cannot hold.</exception>
    public void Validate()
    {
        if (Width <= 0 || Height <= 0) throw new ArgumentException($"image size must be positive, got {Width}x{Height}");
        if (Pixels is null || Pixels.LongLength != 3L * Width * Height)
            throw new ArgumentException($"a {Width}x{Height} RGB image needs {3L * Width * Height} bytes of pixels, got {Pixels?.LongLength ?? 0}");
        foreach (var (key, value) in Parameters)
        {
            if (string.IsNullOrWhiteSpace(key) || key.IndexOfAny([':', ',', '\n', '"']) >= 0 || key != key.Trim())
                throw new ArgumentException($"infotext parameter name \"{key}\" is empty or holds ':', ',', '\"' or a line break");
            ArgumentNullException.ThrowIfNull(value, $"infotext parameter \"{key}\"");
        }
    }
}

/// <summary>
/// Sampling hooks of an <see cref="IGenerationHooks"/>. With any of them subscribed the engine runs steps one at a
/// time (each hook runs before the next step is issued); without, it keeps queuing step i+1 while step i runs.
/// </summary>
public interface ISamplingHooks
{
    /// <summary>True when <see cref="AfterCfgAsync"/> must be called.</summary>
    bool HasAfterCfg { get; }

    /// <summary>True when <see cref="IGenerationHooks.AfterStepAsync"/> must be called.</summary>
    bool HasAfterStep { get; }

    /// <summary>Called on the Python thread inside each model call, right after the CFG combine.</summary>
    ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct);
}

/// <summary>Image hooks of an <see cref="IGenerationHooks"/>.</summary>
public interface IImageSaveHooks
{
    /// <summary>True when <see cref="BeforeImageSavedAsync"/> must be called (images are then decoded to pixels first).</summary>
    bool HasBeforeImageSaved { get; }

    /// <summary>Called for each image of a batch before any of them is written.</summary>
    ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct);
}

/// <summary>What a backend needs to run sampling and image hooks.</summary>
public interface IHookedGenerationBackend
{
    /// <summary>
    /// <see cref="IGenerationBackend.StepAsync"/> that calls <paramref name="afterCfg"/> right after the CFG combine,
    /// before the sampler update; its exception fails the step as thrown.
    /// </summary>
    Task StepWithAfterCfgAsync(SamplingHandle sampling, IReadOnlyList<(ConditioningHandle Handle, double Weight)> positive,
        ConditioningHandle negative, double cfgScale, Func<CfgStep, ValueTask> afterCfg, CancellationToken ct);

    /// <summary>The final latents decoded to RGB: the pixels <see cref="IGenerationBackend.DecodePngAsync"/> would write.</summary>
    Task<IReadOnlyList<RgbImage>> DecodeRgbAsync(SamplingHandle sampling, CancellationToken ct);

    /// <summary>PNG bytes with the infotext, encoded as <see cref="IGenerationBackend.DecodePngAsync"/> encodes.</summary>
    Task<byte[]> EncodePngAsync(RgbImage image, string infotext, CancellationToken ct);
}
