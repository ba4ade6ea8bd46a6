namespace LoraBridge.Prompting;

/// <summary>A run of consecutive denoiser calls of one pass in which no AND part's text and no LoRA multiplier changes.</summary>
/// <param name="First">First call (0-based).</param>
/// <param name="Last">Last call, inclusive.</param>
public readonly record struct PlanRow(int First, int Last)
{
    /// <summary>"3" for one call, "3-7" for several: the steps column of the plan tables.</summary>
    public string Steps => First == Last ? $"{First}" : $"{First}-{Last}";
}

/// <summary>The grouping of a pass into <see cref="PlanRow"/>s, the one home of it for the CLI's and the TUI's plan tables.</summary>
public static class PlanRows
{
    /// <summary>The pass's calls as maximal runs in which nothing changes, in call order.</summary>
    public static IReadOnlyList<PlanRow> Of(PassPlan pass)
    {
        var rows = new List<PlanRow>();
        int start = 0;
        for (int i = 1; i <= pass.Steps; i++)
        {
            if (i < pass.Steps && Same(pass, i - 1, i)) continue;
            rows.Add(new PlanRow(start, i - 1));
            start = i;
        }
        return rows;
    }

    private static bool Same(PassPlan pass, int a, int b) =>
        pass.Parts.All(p => p.TextAt(a) == p.TextAt(b))
        && pass.Loras.All(l => l.Te[a].Equals(l.Te[b]) && l.Unet[a].Equals(l.Unet[b]));
}
