using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using VmmSharp.Arch.X86;

namespace VmmSharp.Cli.Commands;

/// <summary>
/// Options whose values are checked while the command line is parsed, before anything starts: a bad value becomes one
/// parse error that names the option, the value and what is allowed.
/// </summary>
internal static class OptionValues
{
    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static Option<int> Count(string name, string description, int defaultValue, int min, int max) => new(name)
    {
        Description = $"{description} ({min} to {max}; default {defaultValue})",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            string text = Single(r);
            if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max)
            {
                return n;
            }
            r.AddError($"{name} '{text}': give a whole number from {min} to {max}");
            return defaultValue;
        },
    };

    /// <summary>A number of seconds, 0 meaning no limit, up to what a timed wait can take.</summary>
    public static Option<TimeSpan?> Seconds(string name, string description)
    {
        double max = Math.Floor(Machine.MachineOptions.MaxDeadline.TotalSeconds);
        return new(name)
        {
            Description = $"{description} (0: never; at most {max:0})",
            DefaultValueFactory = _ => null,
            CustomParser = r =>
            {
                string text = Single(r);
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && double.IsFinite(s) && s >= 0 && s <= max)
                {
                    return s == 0 ? null : TimeSpan.FromSeconds(s);
                }
                r.AddError($"{name} '{text}': give a number of seconds from 0 (no limit) to {max:0} (about 24 days)");
                return null;
            },
        };
    }

    /// <summary>A period in seconds, more than 0 (fractions allowed: <c>0.2</c>), at most a day; 60 s if not given.</summary>
    public static Option<TimeSpan> Period(string name, string description) => new(name)
    {
        Description = $"{description} (default 60; 0.01 to 86400)",
        DefaultValueFactory = _ => TimeSpan.FromSeconds(60),
        CustomParser = r =>
        {
            string text = Single(r);
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && double.IsFinite(s) && s >= 0.01 && s <= 86400)
            {
                return TimeSpan.FromSeconds(s);
            }
            r.AddError($"{name} '{text}': give a number of seconds from 0.01 to 86400");
            return TimeSpan.FromSeconds(60);
        },
    };

    /// <summary>A guest memory size: <c>512M</c>, <c>2G</c>, plain bytes; at least the layout's minimum, in whole pages.</summary>
    public static Option<ulong> MemorySize(string name, string description, ulong defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r =>
        {
            if (!SizeArgument.TryParse(Single(r), out ulong bytes, out string? error))
            {
                r.AddError($"{name}: {error}");
                return defaultValue;
            }
            try
            {
                Layout.ValidateMemorySize(bytes);
                return bytes;
            }
            catch (ArgumentException e)
            {
                r.AddError($"{name} '{Single(r)}': {(e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal))}");
                return defaultValue;
            }
        },
    };

    /// <summary>One of an enum's names, in any case.</summary>
    public static Option<T> OneOf<T>(string name, string description, T defaultValue)
        where T : struct, Enum => new(name)
        {
            Description = $"{description} ({string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))})",
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r =>
            {
                string text = Single(r);
                string? known = Enum.GetNames<T>().FirstOrDefault(n => n.Equals(text, StringComparison.OrdinalIgnoreCase));
                if (known is not null)
                {
                    return Enum.Parse<T>(known);
                }
                r.AddError($"{name} '{text}': give one of {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");
                return defaultValue;
            },
        };

    /// <summary>Repeatable CPUID masks, parsed here so that a bad one stops the command before it starts.</summary>
    public static Option<CpuidMask[]> CpuidMasks(string name, string description) => new(name)
    {
        Description = description,
        AllowMultipleArgumentsPerToken = false,
        DefaultValueFactory = _ => [],
        CustomParser = r =>
        {
            var masks = new List<CpuidMask>();
            foreach (Token token in r.Tokens)
            {
                try
                {
                    masks.Add(CpuidMask.Parse(token.Value));
                }
                catch (FormatException e)
                {
                    r.AddError($"{name}: {e.Message}");
                }
            }
            return [.. masks];
        },
    };

    private static string Single(ArgumentResult r) => r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
}
