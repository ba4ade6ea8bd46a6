namespace LoraBridge.Engine;

/// <summary>
/// Callbacks the <see cref="GenerationEngine"/> makes during a job (extensions implement them). A hook that throws
/// fails the job; network weights are restored as for any other failure.
/// </summary>
public interface IGenerationHooks
{
    /// <summary>Called before a job is validated and planned; returns the request to run (may rewrite prompt or settings).</summary>
    ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct);

    /// <summary>Called after each sampler step completes, with the same progress the job reports.</summary>
    ValueTask AfterStepAsync(GenerationProgress progress, CancellationToken ct);

    /// <summary>Called after each image file is written, with its path and infotext.</summary>
    ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct);
}
