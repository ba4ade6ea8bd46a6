using System.CommandLine;
using System.Globalization;
using LoraBridge.Engine;

namespace LoraBridge.Cli;

/// <summary>
/// Range checks attached to options, so a bad value is a parse error naming the option (exit 2, see
/// <see cref="Program"/>) before any host, model or Python starts. The limits live in <see cref="GenerationLimits"/>.
/// </summary>
public static class OptionValidation
{
    /// <summary>Requires <paramref name="min"/> ≤ value ≤ <paramref name="max"/>.</summary>
    public static T Range<T>(T option, int min, int max) where T : Option
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0) return;
            object? value;
            try { value = result.GetValueOrDefault<object?>(); }
            catch (InvalidOperationException) { return; } // not a number: the parser reports that itself
            if (value is int v && (v < min || v > max))
                result.AddError($"{option.Name} must be between {min} and {max}, got {v}");
        });
        return option;
    }

    /// <summary>Requires an existing folder: a mistyped <c>--webui-dir</c> would otherwise silently find no models.</summary>
    public static Option<string> ExistingFolder(Option<string> option)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0) return;
            var value = result.GetValueOrDefault<string>();
            if (!string.IsNullOrEmpty(value) && !Directory.Exists(value))
                result.AddError($"{option.Name} {TerminalText.Escape(value)}: no such folder");
        });
        return option;
    }

    /// <summary>Requires a finite number within ±<paramref name="max"/>: NaN and infinity parse as doubles but mean nothing here.</summary>
    public static Option<double> Finite(Option<double> option, double max)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0) return;
            double v;
            try { v = result.GetValueOrDefault<double>(); }
            catch (InvalidOperationException) { return; }
            if (!double.IsFinite(v) || Math.Abs(v) > max)
                result.AddError($"{option.Name} must be a finite number between {-max} and {max}, got {v.ToString(CultureInfo.InvariantCulture)}");
        });
        return option;
    }
}
