namespace LoraBridge.Batch;

/// <summary>
/// One generation rendered from a batch template. Settings left <c>null</c> fall back to the
/// command line's values, so a template can vary only what it sweeps.
/// </summary>
/// <param name="Prompt">Positive prompt, in the A1111 prompt language.</param>
/// <param name="Line">1-based line of the rendered template output that produced the job, for error messages.</param>
public sealed record BatchJob(string Prompt, int Line)
{
    /// <summary>Negative prompt.</summary>
    public string? NegativePrompt { get; init; }
    /// <summary>Seed; <c>null</c> takes the command line's seed.</summary>
    public long? Seed { get; init; }
    /// <summary>Sampling steps.</summary>
    public int? Steps { get; init; }
    /// <summary>Classifier-free guidance scale.</summary>
    public double? CfgScale { get; init; }
    /// <summary>A1111 sampler name, e.g. "Euler a".</summary>
    public string? Sampler { get; init; }
    /// <summary>A1111 schedule type, e.g. "Karras".</summary>
    public string? Schedule { get; init; }
    /// <summary>Image width in pixels.</summary>
    public int? Width { get; init; }
    /// <summary>Image height in pixels.</summary>
    public int? Height { get; init; }
    /// <summary>Column label when the job is a cell of an X/Y sweep.</summary>
    public string? X { get; init; }
    /// <summary>Row label when the job is a cell of an X/Y sweep.</summary>
    public string? Y { get; init; }
    /// <summary>Init picture: the job is img2img.</summary>
    public string? InitImage { get; init; }
    /// <summary>Denoising strength (img2img or hires).</summary>
    public double? Denoise { get; init; }
    /// <summary>img2img resize mode.</summary>
    public string? ResizeMode { get; init; }
    /// <summary>Hires fix on (true) or off (false); null takes the command line's.</summary>
    public bool? Hires { get; init; }
    /// <summary>Hires upscale factor.</summary>
    public double? HrScale { get; init; }
    /// <summary>Hires steps (0: same as steps).</summary>
    public int? HrSteps { get; init; }
    /// <summary>Hires upscaler name.</summary>
    public string? HrUpscaler { get; init; }
}

/// <summary>A template problem with the position it happened at (1-based line and column).</summary>
/// <param name="File">Template file (or data file) the position refers to.</param>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column.</param>
/// <param name="Message">What went wrong.</param>
public sealed record BatchError(string File, int Line, int Column, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{File}({Line},{Column}): {Message}";
}

/// <summary>Thrown when a template cannot be parsed or rendered into jobs.</summary>
public sealed class BatchTemplateException : Exception
{
    /// <summary>Creates the exception from one or more positioned errors.</summary>
    public BatchTemplateException(IReadOnlyList<BatchError> errors)
        : base(string.Join(Environment.NewLine, errors)) => Errors = errors;

    /// <summary>Every error found, in source order.</summary>
    public IReadOnlyList<BatchError> Errors { get; }
}
