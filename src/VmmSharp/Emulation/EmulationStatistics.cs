using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// How many instructions the fallback emulated, per mnemonic, summed over the vCPUs that share it; and how many
/// emulation failures it could not handle. Counting is lock-free and allocates nothing.
/// </summary>
public sealed class EmulationStatistics
{
    private static readonly int MnemonicCount = Enum.GetValues<Mnemonic>().Length;

    private readonly long[] _counts = new long[MnemonicCount];
    private long _unhandled;
    private long _faults;

    /// <summary>How many emulation failures were not the fallback's to handle (reported as errors instead).</summary>
    public long Unhandled => Volatile.Read(ref _unhandled);

    /// <summary>How many emulated instructions raised an exception in the guest (#PF, #GP, #UD…) instead of completing.</summary>
    public long Faults => Volatile.Read(ref _faults);

    /// <summary>How many instructions in all were emulated.</summary>
    public long Total
    {
        get
        {
            long total = 0;
            for (int i = 0; i < _counts.Length; i++)
            {
                total += Volatile.Read(ref _counts[i]);
            }
            return total;
        }
    }

    /// <summary>How many <paramref name="mnemonic"/> instructions were emulated.</summary>
    public long Count(Mnemonic mnemonic) => (uint)mnemonic < (uint)_counts.Length ? Volatile.Read(ref _counts[(int)mnemonic]) : 0;

    /// <summary>How many instructions with the mnemonic <paramref name="mnemonic"/> (as Iced spells it, e.g. "int3") were emulated.</summary>
    public long Count(string mnemonic)
        => Enum.TryParse(mnemonic, ignoreCase: true, out Mnemonic m) ? Count(m) : 0;

    /// <summary>The counts of the mnemonics emulated at least once, by lower-case mnemonic, most frequent first.</summary>
    public IReadOnlyList<KeyValuePair<string, long>> Snapshot()
    {
        var list = new List<KeyValuePair<string, long>>();
        for (int i = 0; i < _counts.Length; i++)
        {
            long n = Volatile.Read(ref _counts[i]);
            if (n != 0)
            {
                list.Add(new(((Mnemonic)i).ToString().ToLowerInvariant(), n));
            }
        }
        list.Sort((a, b) => b.Value != a.Value ? b.Value.CompareTo(a.Value) : string.CompareOrdinal(a.Key, b.Key));
        return list;
    }

    internal void Emulated(Mnemonic mnemonic, bool faulted)
    {
        Interlocked.Increment(ref _counts[(int)mnemonic]);
        if (faulted)
        {
            Interlocked.Increment(ref _faults);
        }
    }

    internal void NotHandled() => Interlocked.Increment(ref _unhandled);
}
