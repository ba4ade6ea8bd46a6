using System.Globalization;

namespace LoraBridge.Prompting;

/// <summary>One keyframe of a LoRA multiplier: the value at a point of the pass.</summary>
/// <param name="Value">Multiplier.</param>
/// <param name="Time">The time as written: with a dot a fraction of the pass, without one an absolute step.</param>
public readonly record struct Keyframe(double Value, string? Time)
{
    /// <summary>The keyframe's step (0-based denoiser call) in a pass; A1111's number kinds and hires mapping.</summary>
    public double StepIn(ScheduleOptions pass)
    {
        if (Time is null) return 0;
        double v = double.Parse(Time, NumberStyles.Float, CultureInfo.InvariantCulture);
        bool hires = pass.HiresSteps is not null && !pass.UseOldScheduling;
        return Time.Contains('.') ? (v - (hires ? 1.0 : 0.0)) * pass.TotalSteps : v - (hires ? pass.Steps : 0);
    }
}

/// <summary>A multiplier that is constant or interpolated linearly between keyframes (<c>0@0,1@0.5</c>).</summary>
/// <param name="Keyframes">Keyframes in the order written; a constant has one keyframe without time.</param>
public sealed record MultiplierCurve(IReadOnlyList<Keyframe> Keyframes)
{
    /// <summary>True when the value changes over the pass.</summary>
    public bool IsKeyframed => Keyframes.Count > 1 || Keyframes[0].Time is not null;

    /// <summary>Value at 0-based call <paramref name="step"/>: linear between keyframes, held before the first and after the last.</summary>
    public double At(int step, ScheduleOptions pass) => IsKeyframed ? At(step, Points(pass)) : Keyframes[0].Value;

    /// <summary>Values at calls 0 … <paramref name="count"/>-1.</summary>
    public double[] Sample(int count, ScheduleOptions pass)
    {
        var values = new double[count];
        if (!IsKeyframed) { Array.Fill(values, Keyframes[0].Value); return values; }
        var points = Points(pass);
        for (int i = 0; i < count; i++) values[i] = At(i, points);
        return values;
    }

    // Stable sort keeps the written order of keyframes at the same time (the later one wins after that time).
    private List<(double T, double V)> Points(ScheduleOptions pass) =>
        Keyframes.Select(k => (T: k.StepIn(pass), V: k.Value)).OrderBy(p => p.T).ToList();

    private static double At(int step, List<(double T, double V)> points)
    {
        if (step <= points[0].T) return points[0].V;
        for (int i = 1; i < points.Count; i++)
        {
            if (step <= points[i].T)
            {
                var (t0, v0) = points[i - 1];
                var (t1, v1) = points[i];
                return t1 == t0 ? v1 : v0 + (v1 - v0) * ((step - t0) / (t1 - t0));
            }
        }
        return points[^1].V;
    }

    /// <summary>Parses <c>v</c> or <c>v@t,v@t,...</c>; values use Python float(), times are A1111 step numbers.</summary>
    public static PromptResult<MultiplierCurve> Parse(string text, int position)
    {
        if (!text.Contains('@'))
        {
            return PyText.TryParseFloat(text, out double c)
                ? PromptResult<MultiplierCurve>.Ok(new MultiplierCurve([new Keyframe(c, null)]))
                : PromptResult<MultiplierCurve>.Fail(new PromptError(PromptErrorKind.ValueError, position, $"multiplier '{text}' is not a number"));
        }
        var frames = new List<Keyframe>();
        foreach (var part in text.Split(','))
        {
            int at = part.IndexOf('@');
            if (at < 0)
                return PromptResult<MultiplierCurve>.Fail(new PromptError(PromptErrorKind.SyntaxError, position,
                    $"keyframe '{part}' needs the form value@step (e.g. 0@0,1@0.5)"));
            var time = PyText.Strip(part[(at + 1)..]);
            if (!PyText.TryParseFloat(part[..at], out double v))
                return PromptResult<MultiplierCurve>.Fail(new PromptError(PromptErrorKind.SyntaxError, position, $"keyframe value '{part[..at]}' is not a number"));
            if (!IsStepNumber(time))
                return PromptResult<MultiplierCurve>.Fail(new PromptError(PromptErrorKind.SyntaxError, position,
                    $"keyframe time '{time}' must be a step (10) or a fraction with a dot (0.5)"));
            frames.Add(new Keyframe(v, time));
        }
        return PromptResult<MultiplierCurve>.Ok(new MultiplierCurve(frames));
    }

    /// <summary>A finite number in plain decimal notation (ASCII), as edit steps are written.</summary>
    public static bool IsStepNumber(string s)
    {
        if (s.Length == 0) return false;
        int i = s[0] is '+' or '-' ? 1 : 0;
        int digits = 0, dots = 0;
        for (; i < s.Length; i++)
        {
            if (s[i] is >= '0' and <= '9') digits++;
            else if (s[i] == '.' && dots++ == 0) { }
            else return false;
        }
        return digits > 0;
    }
}

/// <summary>A LoRA tag read with the extended syntax: keyframed multipliers and a start/stop window.</summary>
/// <param name="Tag">The tag.</param>
/// <param name="Name">LoRA name (positional[0]).</param>
/// <param name="Te">Text-encoder multiplier curve.</param>
/// <param name="Unet">UNet multiplier curve (defaults to te).</param>
/// <param name="Start">Step after which the LoRA starts (like <c>[:tag:start]</c>), or null.</param>
/// <param name="Stop">Step after which the LoRA stops (like <c>[tag::stop]</c>), or null.</param>
public sealed record LoraDirective(ExtraNetworkTag Tag, string Name, MultiplierCurve Te, MultiplierCurve Unet, string? Start, string? Stop)
{
    /// <summary>True when the tag uses syntax A1111 does not have.</summary>
    public static bool UsesExtendedSyntax(ExtraNetworkTag tag)
    {
        if (tag.Type is not ("lora" or "lyco")) return false;
        if (tag.TryGetNamed("start", out _) || tag.TryGetNamed("stop", out _)) return true;
        for (int i = 1; i < Math.Min(3, tag.Positional.Count); i++)
            if (tag.Positional[i].Contains('@')) return true;
        return tag.TryGetNamed("te", out var te) && te.Contains('@') || tag.TryGetNamed("unet", out var unet) && unet.Contains('@');
    }

    /// <summary>Reads a tag; the A1111 arguments keep A1111's meaning (te, unet defaulting to te, named overrides).</summary>
    public static PromptResult<LoraDirective> Read(ExtraNetworkTag tag)
    {
        if (tag.Positional.Count == 0)
            return PromptResult<LoraDirective>.Fail(new PromptError(PromptErrorKind.IndexError, tag.Start, "LoRA tag has no name"));
        var te = new MultiplierCurve([new Keyframe(1.0, null)]);
        if (tag.Positional.Count > 1 && !Curve(tag.Positional[1], tag, ref te, out var e1)) return Fail(e1!);
        if (tag.TryGetNamed("te", out var teText) && !Curve(teText, tag, ref te, out var e2)) return Fail(e2!);
        var unet = te;
        if (tag.Positional.Count > 2 && !Curve(tag.Positional[2], tag, ref unet, out var e3)) return Fail(e3!);
        if (tag.TryGetNamed("unet", out var unetText) && !Curve(unetText, tag, ref unet, out var e4)) return Fail(e4!);
        string? start = null, stop = null;
        if (tag.TryGetNamed("start", out var s))
        {
            start = PyText.Strip(s);
            if (!MultiplierCurve.IsStepNumber(start)) return Fail(new PromptError(PromptErrorKind.SyntaxError, tag.Start, $"start='{s}' must be a step (10) or a fraction (0.5)"));
        }
        if (tag.TryGetNamed("stop", out var t))
        {
            stop = PyText.Strip(t);
            if (!MultiplierCurve.IsStepNumber(stop)) return Fail(new PromptError(PromptErrorKind.SyntaxError, tag.Start, $"stop='{t}' must be a step (10) or a fraction (0.5)"));
        }
        return PromptResult<LoraDirective>.Ok(new LoraDirective(tag, tag.Positional[0], te, unet, start, stop));
    }

    private static PromptResult<LoraDirective> Fail(PromptError e) => PromptResult<LoraDirective>.Fail(e);

    private static bool Curve(string text, ExtraNetworkTag tag, ref MultiplierCurve curve, out PromptError? error)
    {
        var r = MultiplierCurve.Parse(text, tag.Start);
        error = r.Error;
        if (r.IsOk) curve = r.Value!;
        return r.IsOk;
    }

    /// <summary>Whether the start/stop window admits 0-based call <paramref name="step"/> (A1111's edit rule: before iff when ≥ 1 and step ≤ when).</summary>
    public bool InWindow(int step, ScheduleOptions pass)
    {
        if (Stop is not null && !Before(Switch(Stop, pass), step)) return false;
        if (Start is not null && Before(Switch(Start, pass), step)) return false;
        return true;
    }

    /// <summary><see cref="InWindow"/> for calls 0 … <paramref name="count"/>-1.</summary>
    public bool[] Window(int count, ScheduleOptions pass)
    {
        int? stop = Stop is null ? null : Switch(Stop, pass);
        int? start = Start is null ? null : Switch(Start, pass);
        var w = new bool[count];
        for (int i = 0; i < count; i++)
            w[i] = (stop is not { } sp || Before(sp, i)) && (start is not { } st || !Before(st, i));
        return w;
    }

    // Only plain decimal numbers get here; an infinite one (400 digits) never switches.
    private static int Switch(string number, ScheduleOptions pass) => Scheduler.SwitchStep(number, pass) ?? int.MaxValue;

    private static bool Before(int when, int step) => when >= 1 && step <= when;
}
