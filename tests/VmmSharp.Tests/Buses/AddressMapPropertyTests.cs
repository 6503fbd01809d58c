using CsCheck;
using VmmSharp.Buses;

namespace VmmSharp.Tests.Buses;

/// <summary>AddressMap against a plain list of ranges: the same registrations are refused, the same lookups answered.</summary>
public sealed class AddressMapPropertyTests
{
    // Short ranges in a small space, so that overlaps and neighbours are common; some end at the top of the 64-bit space.
    private static readonly Gen<(ulong First, ulong Last)> Range = Gen.Frequency(
        (4, Gen.Select(Gen.ULong[0, 200], Gen.ULong[0, 24], (first, extra) => (first, first + extra))),
        (1, Gen.Select(Gen.ULong[0, 24], Gen.ULong[0, 24], (fromTop, extra) => (ulong.MaxValue - fromTop - extra, ulong.MaxValue - fromTop))));

    private sealed record Device(int Id);

    [Fact]
    public void Registration_refuses_exactly_the_ranges_that_overlap_a_registered_one()
    {
        Range.Array[1, 30].Sample(ranges =>
        {
            var map = new AddressMap<Device>();
            var model = new List<(ulong First, ulong Last, Device Device)>();
            for (int i = 0; i < ranges.Length; i++)
            {
                (ulong first, ulong last) = ranges[i];
                bool overlaps = model.Exists(m => m.First <= last && first <= m.Last);
                var device = new Device(i);
                Exception? error = Record.Exception(() => map.Add(first, last, device, (a, b) => $"{a:x}-{b:x}", "range"));
                if (overlaps)
                {
                    Assert.IsType<ArgumentException>(error);
                }
                else
                {
                    Assert.Null(error);
                    model.Add((first, last, device));
                }
            }
        });
    }

    [Fact]
    public void Lookup_finds_the_range_holding_the_address_and_the_offset_into_it()
    {
        Gen.Select(Range.Array[1, 30], Gen.ULong[0, 240].Array[0, 40]).Sample((ranges, probes) =>
        {
            var map = new AddressMap<Device>();
            var model = new List<(ulong First, ulong Last, Device Device)>();
            for (int i = 0; i < ranges.Length; i++)
            {
                (ulong first, ulong last) = ranges[i];
                if (!model.Exists(m => m.First <= last && first <= m.Last))
                {
                    var device = new Device(i);
                    map.Add(first, last, device, (a, b) => $"{a:x}-{b:x}", "range");
                    model.Add((first, last, device));
                }
            }
            // Every edge of every range, its neighbours on both sides, and random addresses.
            IEnumerable<ulong> edges = model.SelectMany(m => new[] { m.First - 1, m.First, m.Last, m.Last + 1 });
            foreach (ulong address in edges.Concat(probes).Append(ulong.MaxValue).Append(0UL))
            {
                (ulong First, ulong Last, Device Device)? holder = model.Find(m => m.First <= address && address <= m.Last);
                bool found = map.TryFind(address, out Device? device, out ulong offset);
                Assert.Equal(holder.HasValue && holder.Value.Device is not null, found);
                if (found)
                {
                    Assert.Same(holder!.Value.Device, device);
                    Assert.Equal(address - holder.Value.First, offset);
                }
            }
        });
    }
}
