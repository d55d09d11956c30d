# A ValyxoScript program from the first Valyxo platform: primes, a table and a countdown.

func is_prime(n) {
    if n < 2 then return False
    set d = 2
    while d * d <= n {
        if n % d == 0 then return False
        set d = d + 1
    }
    return True
}

set limit = 30
set found = 0
for i in 1 to limit {
    if is_prime(i) then {
        set found = found + 1
    }
}
print "primes up to", limit, "=", found

func square(x) {
    return x * x
}
for i in 1 to 3 {
    if i == 2 then print i, "squared is", square(i) else print i, "->", square(i)
}

set k = 3
while [k > 0] {
    print "countdown", k
    set k = k - 1
}
if found > 5 and not (found > 100) then {
    print "a reasonable number of primes"
} else {
    print "unexpected"
}
